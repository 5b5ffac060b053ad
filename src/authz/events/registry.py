"""Every event sink, by the name the `event_sinks` setting uses. Each sink module declares its
NAME, the SETTINGS it reads, `check(settings)` for them and `build(settings, context)`; this
list is the only place a sink is named (docs/contributing.md, "Recipe: add an event sink")."""

from __future__ import annotations

from authz import suggest
from authz.config import ConfigError, Settings
from authz.events import file_sink, redis_sink
from authz.events.sinks import EventSink, FanOut, SinkContext

SINK_MODULES = (redis_sink, file_sink)
BY_NAME = {module.NAME: module for module in SINK_MODULES}


def check(settings: Settings) -> None:
    """The names in `event_sinks` are known sinks, each once, and each one's settings hold."""
    names = settings.event_sink_names()
    unknown = [name for name in names if name not in BY_NAME]
    if not names or unknown or len(set(names)) != len(names):
        hint = suggest.did_you_mean(unknown[0], BY_NAME) if unknown else ""
        raise ConfigError(
            f"setting 'event_sinks' = {settings.event_sinks!r}: name one or more of "
            f"{', '.join(BY_NAME)}, each once, comma-separated{hint}"
        )
    for name in names:
        BY_NAME[name].check(settings)


def build(settings: Settings, context: SinkContext) -> EventSink:
    """The sinks `event_sinks` names, in that order; several as one FanOut."""
    sinks: list[EventSink] = [BY_NAME[name].build(settings, context) for name in settings.event_sink_names()]
    return sinks[0] if len(sinks) == 1 else FanOut(sinks)
