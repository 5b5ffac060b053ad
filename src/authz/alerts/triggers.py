"""What queues an alert, in the `alerts` Redis stream (delivered by alerts.dispatcher):
- a catalog load changes a provider's compliance under an org's enabled policy, or a watched
  model loses compliant providers (enqueue_catalog_changes, from the catalog load);
- an org's blocks exceed its threshold within its window (BlockCounter: counted in Redis
  across every process, as the security-event writer reports stored events);
- a block at the egress checkpoint, whatever the threshold (once per org and window): the
  ingress check missed a route to that provider.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from authz.alerts.messages import Message, block_alert, egress_alert
from authz.events.records import Record
from authz.policy import catalog as catalog_mod
from authz.policy import rules as policy_rules
from authz.state.layout import Keys, RedisClient, alert_settings, policy_from_json
from authz.v1 import catalog_pb2


async def enqueue(redis: RedisClient, keys: Keys, org_id: str, webhook_url: str, kind: str, message: Message) -> None:
    await redis.xadd(
        keys.alerts,
        {"org_id": org_id, "webhook_url": webhook_url, "kind": kind, "message": message.to_json()},
        maxlen=100_000,
        approximate=True,
    )


async def enqueue_catalog_changes(
    redis: RedisClient, keys: Keys, old: catalog_pb2.Catalog | None, new: catalog_pb2.Catalog
) -> int:
    """One alert per org with alerts configured whose enabled policy now judges some provider
    differently. Returns how many alerts were queued."""
    if old is None:
        return 0
    old_index, new_index = catalog_mod.CatalogIndex.build(old), catalog_mod.CatalogIndex.build(new)
    queued = 0
    async for key in redis.scan_iter(match=keys.org("*"), count=500):
        fields = await redis.hgetall(key)
        alerts = alert_settings(fields)
        raw = fields.get(b"policy")
        if not alerts.webhook_url or not raw:
            continue
        p = policy_from_json(raw)
        rules = policy_rules.rules_of(p)
        if rules == policy_rules.NO_RULES:
            continue
        before, after = old_index.table(rules).unmet, new_index.table(rules).unmet
        org_id = key.decode()[len(keys.org("")) :]
        message = (
            Message()
            .text("Provider compliance changed for org ")
            .value(org_id)
            .text(f" under policy v{p.version} (catalog v{new.version}): ")
        )
        changes = 0
        for pid in sorted(set(before) | set(after)):
            was, now = before.get(pid), after.get(pid)
            if was is not None and now is not None and bool(was) == bool(now):
                continue
            message.text("; " if changes else "").value(pid)
            if now is None:
                message.text(" left the catalog")
            elif not now:
                message.text(" is now allowed")
            else:
                message.text(f" is now blocked (it {policy_rules.describe(now)})")
            changes += 1
        if changes:
            await enqueue(redis, keys, org_id, alerts.webhook_url, "catalog_change", message.text("."))
            queued += 1
        watched = watched_losses(old_index, new_index, rules, alerts.watched_models)
        if watched:
            losing = Message().text("Watched models lost compliant providers for org ").value(org_id)
            losing.text(f" (catalog v{new.version}): ")
            for i, (model, had, has) in enumerate(watched):
                losing.text("; " if i else "").value(model)
                losing.text(f" has {has} compliant provider{'s' if has != 1 else ''} (was {had})")
                if not has:
                    losing.text(": every request for it is blocked")
            await enqueue(redis, keys, org_id, alerts.webhook_url, "watched_model", losing.text("."))
            queued += 1
    return queued


def watched_losses(
    old: catalog_mod.CatalogIndex, new: catalog_mod.CatalogIndex, rules: policy_rules.Rules, watched: Sequence[str]
) -> list[tuple[str, int, int]]:
    """(model, compliant providers before, after) for each watched model that lost some."""
    before, after = old.table(rules), new.table(rules)
    losses = []
    for model in watched:
        was = len(before.for_model(model).allowed) if model in old.models else 0
        now = len(after.for_model(model).allowed) if model in new.models else 0
        if now < was:
            losses.append((model, was, now))
    return losses


EGRESS_WINDOW_S = 3600  # without an org block-alert window: one egress alert per hour at most


class BlockCounter:
    """Counts each org's blocks per fixed window in Redis (shared by every process) as the
    event writer reports newly stored events, and queues one alert per window when an org's
    count passes its threshold. A replayed event is not new, so it is never counted twice."""

    def __init__(self, redis: RedisClient, keys: Keys):
        self._redis = redis
        self._keys = keys

    async def written(self, records: Sequence[Record]) -> None:
        await self._egress_blocks(records)
        counted = [r for r in records if int(r.get("alert_threshold") or 0) and int(r.get("alert_window_s") or 0)]
        if not counted:
            return
        now = int(time.time())
        counters = [self._keys.block_count(r["org_id"], now // int(r["alert_window_s"])) for r in counted]
        async with self._redis.pipeline(transaction=False) as pipe:
            for counter in counters:
                pipe.incr(counter)
            counts = await pipe.execute()
        for r, counter, count in zip(counted, counters, counts, strict=True):
            threshold, window_s = int(r["alert_threshold"]), int(r["alert_window_s"])
            if count == 1:
                await self._redis.expire(counter, window_s)  # the counter goes with its window
            if count == threshold + 1:  # crossed just now: one alert per window
                message = block_alert(r["org_id"], threshold, window_s, json.loads(r["event"]))
                await enqueue(self._redis, self._keys, r["org_id"], r["alert_webhook"], "blocks", message)

    async def _egress_blocks(self, records: Sequence[Record]) -> None:
        now = int(time.time())
        for r in records:
            if not r.get("alert_webhook"):
                continue
            event = json.loads(r["event"])
            if event.get("checkpoint") != "egress" or not event.get("enforced", True):
                continue
            window_s = int(r.get("alert_window_s") or 0) or EGRESS_WINDOW_S
            key = self._keys.egress_alerted(r["org_id"], now // window_s)
            if await self._redis.set(key, b"1", nx=True, ex=window_s):
                await enqueue(
                    self._redis, self._keys, r["org_id"], r["alert_webhook"], "egress_block", egress_alert(event)
                )
