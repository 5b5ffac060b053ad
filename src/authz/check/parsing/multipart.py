"""multipart/form-data bodies (audio, images, file uploads), with python-multipart.

python-multipart is the parser Starlette, FastAPI and so LiteLLM use, driven here through
the same low-level callbacks, so a field reads as it reads behind us. Only the fields a row
needs are kept; everything else streams past without a copy. Anything another parser could
read differently is refused: a part with no name, a transfer encoding (Go decodes
quoted-printable), a body that does not end with the closing boundary, unless the parts the
row needs ended before Envoy cut the body.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

from authz.reasons import Reason

_PLAIN_ENCODINGS = {b"", b"7bit", b"8bit", b"binary"}
MAX_FIELD_BYTES = 64 * 1024  # a model or purpose longer than this is no model
# Starlette refuses a form of more than 1,000 files or 1,000 fields (MultiPartParser max_files,
# max_fields); past that the gateway answers 400 anyway, and each part costs authz parser work.
MAX_PARTS = 1000


@dataclass(slots=True)
class Part:
    name: str
    is_file: bool
    data: list[bytes] = field(default_factory=list)
    size: int = 0

    def value(self) -> bytes:
        return b"".join(self.data)


@dataclass(slots=True)
class _State:
    """The parser callbacks' shared state while one body is read."""

    header_name: bytes = b""
    header_value: bytes = b""
    headers: dict[bytes, bytes] = field(default_factory=dict)
    part: Part | None = None
    parts: int = 0
    ended: bool = False
    bad: bool = False


class _TooMany(Exception):
    """More than MAX_PARTS parts: stop reading at once."""


def parts(
    body: bytes, boundary: bytes, wanted: frozenset[str], names: list[str] | None = None
) -> tuple[list[Part], bool] | Reason:
    """The parts named in `wanted` (in order), and whether the body ended properly. `names`,
    when given, receives every part's name (a gateway may read fields authz does not need)."""
    found: list[Part] = []
    state = _State()

    def on_part_begin() -> None:
        state.headers = {}
        state.part = None
        state.parts += 1
        if state.parts > MAX_PARTS:
            raise _TooMany

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value += data[start:end]

    def on_header_end() -> None:
        name = state.header_name.lower()
        if name in state.headers:
            # A header sent twice in one part: Starlette keeps the last one, another reader the
            # first or both; refused, as any of these readings could be the gateway's.
            state.bad = True
        state.headers[name] = state.header_value
        state.header_name = state.header_value = b""

    def on_headers_finished() -> None:
        headers = state.headers
        disposition, options = parse_options_header(headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if disposition != b"form-data" or name is None:
            state.bad = True
            return
        encoding = headers.get(b"content-transfer-encoding", b"").strip().lower()
        text = name.decode("latin-1")
        if names is not None:
            names.append(text)
        if text in wanted:
            if encoding not in _PLAIN_ENCODINGS:
                state.bad = True
                return
            state.part = Part(text, is_file=b"filename" in options)
            found.append(state.part)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = state.part
        if part is not None:
            part.size += end - start
            if part.is_file or part.size <= MAX_FIELD_BYTES:
                part.data.append(data[start:end])

    def on_end() -> None:
        state.ended = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_end": on_end,
        },
        max_header_count=32,
        max_header_size=16 * 1024,
    )
    try:
        parser.write(body)
    except Exception:  # python-multipart raises its own errors and ValueError for malformed input;
        return Reason.BODY_MALFORMED  # _TooMany: more parts than the gateway accepts
    if state.bad:
        return Reason.BODY_MALFORMED
    return found, state.ended


def text_field(found: list[Part], name: str) -> str | None | Reason:
    """The one text field `name`, decoded as UTF-8; None when absent."""
    values = [p for p in found if p.name == name]
    if not values:
        return None
    if len(values) > 1:
        return Reason.DUPLICATE_MODEL if name == "model" else Reason.BODY_MALFORMED
    part = values[0]
    if part.is_file or part.size > MAX_FIELD_BYTES:
        return Reason.MODEL_INVALID if name == "model" else Reason.BODY_MALFORMED
    try:
        value = part.value().decode()
    except UnicodeDecodeError:
        return Reason.MODEL_INVALID if name == "model" else Reason.BODY_MALFORMED
    if name == "model" and not value:
        return Reason.MODEL_INVALID
    return value
