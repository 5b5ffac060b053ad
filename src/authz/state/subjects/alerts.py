"""An org's alert settings."""

from __future__ import annotations

from authz.state.layout import (
    ORG_MESSAGE,
    Pipeline,
    alert_settings,
    message_json,
)
from authz.state.writes import (
    Change,
    ChangedSinceRead,
    StoreBase,
)
from authz.v1 import policy_pb2


class AlertStore(StoreBase):
    async def set_alerts(
        self,
        org_id: str,
        alerts: policy_pb2.AlertSettings,
        actor: str,
        expected: policy_pb2.AlertSettings | None = None,
    ) -> None:
        """With `expected` (the settings read before), other settings raise ChangedSinceRead."""
        key = self.keys.org(org_id)
        text = message_json(alerts)

        async def prepare(pipe: Pipeline) -> Change:
            raw = await pipe.hget(key, "alerts")
            if expected is not None and alert_settings({b"alerts": raw} if raw else {}) != expected:
                raise ChangedSinceRead("the alert settings changed since they were read")
            return Change(
                lambda pipe: pipe.hset(key, "alerts", text),
                org_id=org_id,
                before=raw.decode() if raw else "",
                after=text,
            )

        await self.audited_write("alerts.set", actor, prepare, key, invalidate=ORG_MESSAGE + org_id)
