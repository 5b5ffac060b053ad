"""Alert messages: literal parts (ours) and values (anyone's), escaped for the target.

The text carries client-controlled values (model names, user agents): a message is kept as
literal parts and values, and each value is escaped for the target it is rendered for (Slack
mrkdwn, Discord markdown), inside inline code, with mentions disabled, so `<!channel>`,
`@everyone` or `<url|label>` in a model name arrive as inert text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from authz.clip import clip

_VALUE_CHARS = 200  # one value in a message; the whole message stays far below Slack's 40k
_MAX_VALUES = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


class Message:
    """Alert text as literal parts (ours) and values (anyone's), escaped only when rendered."""

    def __init__(self, parts: list[tuple[bool, str]] | None = None):
        self.parts: list[tuple[bool, str]] = parts or []  # (is_value, text)

    def text(self, literal: str) -> Message:
        self.parts.append((False, literal))
        return self

    def value(self, value: object) -> Message:
        if sum(1 for is_value, _ in self.parts if is_value) < _MAX_VALUES:
            self.parts.append((True, _CONTROL.sub(" ", clip(str(value), _VALUE_CHARS))))
        return self

    def to_json(self) -> str:
        return json.dumps(self.parts, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Message:
        return cls([(bool(v), str(t)) for v, t in json.loads(raw)])

    def slack(self) -> str:
        # Slack's own escaping (&, <, >) stops mentions and <url|label> links; inline code stops
        # mrkdwn and auto-linking. A backtick would end the code span, so it never gets in.
        return "".join(
            f"`{_slack_escape(t.replace('`', chr(0x2CB)))}`" if v else _slack_escape(t) for v, t in self.parts
        )

    def discord(self) -> str:
        # Inside inline code Discord renders no markdown or masked links; allowed_mentions in the
        # payload stops pings even where a mention would otherwise parse.
        return "".join(f"`{t.replace('`', chr(0x2CB))}`" if v else t for v, t in self.parts)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(message: Message) -> dict[str, Any]:
    """Slack reads "text", Discord reads "content" (and honours allowed_mentions)."""
    return {"text": message.slack(), "content": message.discord(), "allowed_mentions": {"parse": []}}


def block_alert(org_id: str, threshold: int, window_s: int, event: dict[str, Any]) -> Message:
    message = (
        Message()
        .text("Org ")
        .value(org_id)
        .text(
            f": more than {threshold} requests blocked by the provider compliance policy within "
            f"{window_s} s. Latest: model "
        )
        .value(event.get("model", ""))
        .text(", providers ")
    )
    return (
        _providers(message, event)
        .text(", reason ")
        .value(event.get("reason", ""))
        .text(" (decision ")
        .value(event.get("decision_id", ""))
        .text(").")
    )


def egress_alert(event: dict[str, Any]) -> Message:
    """A block at the egress checkpoint: the gateway called a provider the ingress check never
    judged, so some route of the gateway is missing from its contract."""
    message = Message().text("Org ").value(event.get("org_id", "")).text(": the gateway called provider ")
    return (
        _providers(message, event)
        .text(" for model ")
        .value(event.get("model", ""))
        .text(", blocked at the egress checkpoint (reason ")
        .value(event.get("reason", ""))
        .text(", decision ")
        .value(event.get("decision_id", ""))
        .text("). The ingress check did not see this route: review the gateway's config and docs/egress.md.")
    )


def _providers(message: Message, event: dict[str, Any]) -> Message:
    """The event's providers, comma-separated ("none" when it names none)."""
    for i, provider in enumerate(event.get("providers", [])):
        message.text(", " if i else "").value(provider["provider"])
    return message if event.get("providers") else message.text("none")
