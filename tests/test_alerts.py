"""Compliance alerts end to end: authz (behind the real Envoy) posts Slack/Discord-compatible
JSON to a local receiver when blocks exceed an org's threshold and when a catalog load changes
a provider's compliance under its policy; a failing receiver is retried with backoff, and a
hanging one never slows the Check path."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time

import httpx
import pytest
from aiohttp import web

from authz.testing.stack import SAMPLE_CATALOG, Stack, free_port, wait_until

pytestmark = pytest.mark.e2e


class Receiver:
    """A webhook receiver on loopback; `fail_first` answers 500, `hang_s` delays answers."""

    def __init__(self, fail_first: int = 0, hang_s: float = 0):
        self.port = free_port()
        self.received: list[dict] = []
        self.attempts = 0
        self.fail_first, self.hang_s = fail_first, hang_s
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        ready.set()
        self._loop.run_forever()

    async def _hook(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.hang_s:
            await asyncio.sleep(self.hang_s)
        if self.attempts <= self.fail_first:
            return web.Response(status=500)
        self.received.append(await request.json())
        return web.Response(text="ok")


@pytest.fixture(scope="module")
def alert_stack(tmp_path_factory):
    s = Stack.start(tmp_path_factory.mktemp("alerts"))
    s.admin.load_catalog()
    s.wait_ready()
    yield s
    s.stop()


def setup_org(stack: Stack, org: str, receiver: Receiver, threshold: int = 0, **policy) -> tuple[str, dict]:
    stack.admin.set_plan(org, "enterprise")
    key = f"sk-{org}"
    stack.admin.add_api_key(key, org)
    stack.admin.set_policy(org, enabled=True, **(policy or {"require_gdpr": True}))
    h = {"authorization": f"Bearer {stack.token(org)}"}
    r = httpx.put(f"{stack.authz_http}/v1/orgs/{org}/alerts", headers=h,
                  json={"alerts": {"webhook_url": receiver.url, "block_threshold": threshold, "block_window_s": 60}})
    assert r.status_code == 200, r.text
    return key, h


def blocked(stack: Stack, key: str) -> int:
    return httpx.post(stack.url + "/v1/chat/completions", json={"model": "deepseek/deepseek-v3.2"},
                      headers={"authorization": f"Bearer {key}"}, timeout=10).status_code


def test_blocks_over_threshold_alert_once(alert_stack):
    receiver = Receiver()
    key, _ = setup_org(alert_stack, "alert-blocks", receiver, threshold=3)
    wait_until(lambda: blocked(alert_stack, key) == 403, 5, "policy applied")
    for _ in range(6):
        assert blocked(alert_stack, key) == 403
    wait_until(lambda: len(receiver.received) >= 1, 10, "alert delivered")
    time.sleep(1.0)
    assert len(receiver.received) == 1, "one alert per window"
    [alert] = receiver.received
    assert alert["text"] == alert["content"]  # Slack reads text, Discord content
    assert "alert-blocks" in alert["text"] and "more than 3 requests blocked" in alert["text"]
    assert "deepseek" in alert["text"]


def test_failing_receiver_is_retried_with_backoff(alert_stack):
    receiver = Receiver(fail_first=2)
    key, _ = setup_org(alert_stack, "alert-retry", receiver, threshold=1)
    wait_until(lambda: blocked(alert_stack, key) == 403, 5, "policy applied")
    blocked(alert_stack, key)
    wait_until(lambda: receiver.received, 20, "alert delivered after retries")
    assert receiver.attempts == 3 and len(receiver.received) == 1
    metrics = httpx.get(alert_stack.authz_http + "/metrics").text
    assert 'authz_alerts_total{outcome="retried"} 2.0' in metrics


def test_catalog_change_alerts_name_the_provider(alert_stack):
    receiver = Receiver()
    setup_org(alert_stack, "alert-catalog", receiver, require_gdpr=True)
    changed = json.loads(SAMPLE_CATALOG.read_text())
    original = copy.deepcopy(changed)
    changed["providers"]["deepseek"]["data_policy"]["gdpr"] = True  # deepseek now meets GDPR
    del changed["providers"]["groq"]["data_policy"]["soc2"]  # irrelevant to a GDPR-only policy
    try:
        alert_stack.admin.load_catalog(changed)
        wait_until(lambda: receiver.received, 10, "catalog alert")
        text = receiver.received[0]["text"]
        assert "alert-catalog" in text and "'deepseek' is now allowed" in text and "groq" not in text
    finally:
        alert_stack.admin.load_catalog(original)
    wait_until(lambda: len(receiver.received) == 2, 10, "second catalog alert")
    assert "'deepseek' is now blocked (it fails GDPR (not met))" in receiver.received[1]["text"]


def test_a_hanging_receiver_never_slows_checks(alert_stack):
    receiver = Receiver(hang_s=30)
    key, _ = setup_org(alert_stack, "alert-hang", receiver, threshold=1)
    wait_until(lambda: blocked(alert_stack, key) == 403, 5, "policy applied")
    for _ in range(3):
        blocked(alert_stack, key)
    wait_until(lambda: receiver.attempts >= 1, 10, "delivery under way")
    # Envoy gives authz 200 ms: a stalled Check path would show up as 503s here.
    statuses = [blocked(alert_stack, key) for _ in range(50)]
    assert statuses == [403] * 50


def test_alert_settings_are_validated_and_need_enterprise(alert_stack):
    alert_stack.admin.set_plan("alert-pro", "pro")
    h = {"authorization": f"Bearer {alert_stack.token('alert-pro')}"}
    r = httpx.put(f"{alert_stack.authz_http}/v1/orgs/alert-pro/alerts", headers=h,
                  json={"alerts": {"webhook_url": "https://hooks.example/x"}})
    assert r.status_code == 403 and "Enterprise plan required" in r.text
    alert_stack.admin.set_plan("alert-pro", "enterprise")
    r = httpx.put(f"{alert_stack.authz_http}/v1/orgs/alert-pro/alerts", headers=h,
                  json={"alerts": {"webhook_url": "http://10.1.2.3/hook"}})
    assert r.status_code == 400 and "https://" in r.text
