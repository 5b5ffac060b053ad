"""The repository explains itself: the README stays a quickstart, every document it or the code
points to exists, and nothing cites a design document the repository does not hold."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = (
    "src",
    "tests",
    "fuzz",
    "bench",
    "deploy/k8s",
    "envoy",
    "docs",
    "Makefile",
    "pyproject.toml",
    "README.md",
    "CHANGELOG.md",
    ".ci",
    "Dockerfile",
)
_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".js", ".html", ".proto", ""}


def _files():
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            yield path
        for f in path.rglob("*") if path.is_dir() else ():
            if f.is_file() and f.suffix in _SUFFIXES and "__pycache__" not in f.parts and "/v1/" not in str(f):
                yield f


def test_the_readme_is_a_quickstart():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 12 * 1024
    assert "make demo" in readme and "make test" in readme


def test_every_markdown_link_resolves():
    for doc in [ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)} links to missing {target}"


def test_no_file_cites_a_document_the_repository_lacks():
    cited = re.compile(r"\b((?:docs/)?[A-Za-z_-]+\.md)\b")
    for f in _files():
        text = f.read_text(errors="replace")
        assert "DESIGN.md" not in text or f == Path(__file__), f"{f.relative_to(ROOT)} cites DESIGN.md"
        for name in cited.findall(text):
            if name.startswith("docs/"):
                assert (ROOT / name).exists(), f"{f.relative_to(ROOT)} cites missing {name}"


def _endpoint_line(row) -> str:
    where = {
        "body": f"JSON `{row.field}`",
        "form": f"form field `{row.field}`",
        "query": f"query `{row.field}`",
        "path": "path `{model}`",
        "deployment": "`{deployment}` → model",
        "batch_file": "JSONL lines (`purpose=batch`)",
        "batch_requests": "`requests[].params.model`",
        "no_batch": "none (a batch upload is refused)",
        "none": "none",
    }[row.model]
    return f"| {', '.join(sorted(row.methods))} | `{row.path}` | {where} |"


def test_every_shipped_endpoint_is_listed_in_the_docs():
    from authz.check import endpoints

    doc = (ROOT / "docs" / "requests.md").read_text()
    for row in endpoints.default_table().endpoints:
        line = _endpoint_line(row)
        assert line in doc, f"docs/requests.md, 'Shipped endpoints': add the line\n{line}"


_MAP_ENTRY = re.compile(r"[\w]+\.py|[\w]+/")


def _module_map() -> dict[str, set[str]]:
    """docs/design.md's module map: each layer (package, or the shared bottom) -> the names under it."""
    design = (ROOT / "docs" / "design.md").read_text()
    block = design.split("## Module map", 1)[1].split("```")[1]
    layers: dict[str, set[str]] = {}
    layer = ""
    for line in block.splitlines():
        if line[:1] not in ("", " "):
            layer = "" if line.startswith("shared bottom") else line.split()[0]
            first = len(layer) if layer else len("shared bottom")
            line = line[first:]
        layers.setdefault(layer, set()).update(_MAP_ENTRY.findall(line))
    return layers


def test_the_module_map_names_every_module_in_its_layer():
    package = ROOT / "src" / "authz"
    layers = _module_map()
    missing = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        if parts[0] == "v1" or path.name in ("__init__.py", "__main__.py"):
            continue
        layer = parts[0] + "/" if len(parts) > 1 else ""
        entry = parts[-1] if len(parts) <= 2 else parts[1] + "/"
        if entry not in layers.get(layer, set()):
            missing.append("/".join(parts))
    assert missing == [], "docs/design.md's module map does not name these (in their folder)"


def test_the_module_map_names_nothing_that_is_gone():
    package = ROOT / "src" / "authz"
    gone = [
        f"{layer}{name}"
        for layer, names in _module_map().items()
        for name in names
        if not (package / layer / name).exists() and not (package / layer / "web" / name).exists()
    ]
    assert gone == []


# Our own sources (another repository's src/... is cited with its repository, not checked here).
_CITED_PATH = re.compile(r"\bsrc/(?:authz|devstack)\b[\w./-]*[\w/]")


def test_every_cited_source_path_exists():
    cited = {
        (str(f.relative_to(ROOT)), m)
        for f in _files()
        for m in _CITED_PATH.findall(f.read_text(errors="replace"))
        if f.name != "CHANGELOG.md"  # history: it names files as they were
    }
    missing = sorted(f"{where}: {path}" for where, path in cited if not (ROOT / path).exists())
    assert missing == []


def test_the_settings_reference_is_generated_from_settings_and_current():
    """docs/settings.md is what tools/docs/settings_reference.py renders from `Settings` (names,
    variables, types, defaults) and its descriptions, which must name every setting: a setting
    added without a description, or a default changed without regenerating, fails here."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "settings_reference", ROOT / "tools" / "docs" / "settings_reference.py"
    )
    assert spec and spec.loader
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    assert (ROOT / "docs" / "settings.md").read_text() == reference.render(), (
        "run python3 tools/docs/settings_reference.py"
    )
    assert "| `parse_workers` | `AUTHZ_PARSE_WORKERS` | integer | `1` |" in reference.render()


def test_every_settings_snippet_in_the_docs_loads():
    """Each `name = value` the docs show for a setting is TOML the loader takes for that setting
    (the CHANGELOG once showed a list the loader refuses); the endpoint table example loads too."""
    import tempfile
    import tomllib

    from authz import config
    from authz.check import endpoints

    names = set(config._FIELDS)
    docs = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "SECURITY.md", *sorted((ROOT / "docs").glob("*.md"))]
    checked = 0
    for path in docs:
        text = path.read_text()
        for snippet, name in re.findall(r"`((\w+) = [^`]+)`", text):
            if name in names:
                [(_, value)] = tomllib.loads(snippet).items()  # valid TOML, or this raises
                config._coerce(name, value, f"{path.name}: {snippet}")
                checked += 1
        for block in re.findall(r"```toml\n(.*?)```", text, re.DOTALL):
            assert block.startswith("# /etc/authz/endpoints.toml"), f"{path.name}: a TOML block of unknown kind"
            with tempfile.NamedTemporaryFile("w", suffix=".toml") as table:
                table.write(block)
                table.flush()
                assert endpoints.load(table.name).match("POST", "/v1/assistants/a1/runs") is not None
    assert checked >= 40
