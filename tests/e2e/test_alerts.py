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

from devstack.stack import SAMPLE_CATALOG, Stack, listening_socket, wait_until

pytestmark = pytest.mark.e2e


# The operator's own receivers live here (alert_webhook_allowed_hosts); everything else on
# loopback (Envoy's admin port, authz's admin API) must stay out of a tenant's reach.
RECEIVER_HOST = "127.0.0.7"


class Receiver:
    """A webhook receiver on loopback; `fail_first` answers 500, `hang_s` delays answers,
    `redirect_to` answers 302 to that URL."""

    def __init__(self, fail_first: int = 0, hang_s: float = 0, redirect_to: str = "", host: str = RECEIVER_HOST):
        self.host = host
        self._sock = listening_socket(host)
        self.port = self._sock.getsockname()[1]
        self.redirect_to = redirect_to
        self.received: list[dict] = []
        self.attempts = 0
        self.fail_first, self.hang_s = fail_first, hang_s
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(5)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/hook", self._hook)  # any method counts: a followed 302 arrives as GET
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.SockSite(runner, self._sock).start())
        ready.set()
        self._loop.run_forever()

    async def _hook(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if request.method != "POST":
            return web.Response(status=405)
        if self.hang_s:
            await asyncio.sleep(self.hang_s)
        if self.attempts <= self.fail_first:
            return web.Response(status=500)
        if self.redirect_to:
            raise web.HTTPFound(self.redirect_to)
        self.received.append(await request.json())
        return web.Response(text="ok")


@pytest.fixture(scope="module")
def alert_stack(tmp_path_factory):
    s = Stack.start(tmp_path_factory.mktemp("alerts"), authz_settings={"alert_webhook_allowed_hosts": RECEIVER_HOST})
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
    r = httpx.put(
        f"{stack.authz_http}/v1/orgs/{org}/alerts",
        headers=h,
        json={"alerts": {"webhook_url": receiver.url, "block_threshold": threshold, "block_window_s": 60}},
    )
    assert r.status_code == 200, r.text
    return key, h


def events_of(stack: Stack, org: str) -> list[dict]:
    return [e for e in stack.admin.security_events() if e["org_id"] == org]


def alerts_settled(stack: Stack) -> bool:
    """Every queued alert handed out and acknowledged (delivered, or given up)."""
    client = stack.redis.client()
    key = stack.admin.keys.alerts
    newest = client.xrevrange(key, count=1)
    groups = client.xinfo_groups(key)
    return bool(newest) and all(g["pending"] == 0 and g["last-delivered-id"] == newest[0][0] for g in groups)


def blocked(stack: Stack, key: str) -> int:
    return httpx.post(
        stack.url + "/v1/chat/completions",
        json={"model": "deepseek/deepseek-v3.2"},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    ).status_code


def test_blocks_over_threshold_alert_once(alert_stack):
    receiver = Receiver()
    key, _ = setup_org(alert_stack, "alert-blocks", receiver, threshold=3)
    wait_until(lambda: blocked(alert_stack, key) == 403, 5, "policy applied")
    for _ in range(6):
        assert blocked(alert_stack, key) == 403
    wait_until(lambda: len(receiver.received) >= 1, 10, "alert delivered")
    # Settled: every block's event written and every queued alert delivered or acknowledged.
    wait_until(
        lambda: len(events_of(alert_stack, "alert-blocks")) == 7 and alerts_settled(alert_stack),
        10,
        "events written and alert queue drained",
    )
    assert len(receiver.received) == 1, "one alert per window"
    [alert] = receiver.received
    # Slack reads text, Discord content; values sit in inline code in both.
    assert alert["text"].startswith("Org `alert-blocks`: more than 3 requests blocked")
    assert alert["content"].startswith("Org `alert-blocks`: more than 3 requests blocked")
    assert "model `deepseek/deepseek-v3.2`, providers `deepseek`" in alert["text"]
    assert alert["allowed_mentions"] == {"parse": []}


def test_failing_receiver_is_retried_with_backoff(alert_stack):
    receiver = Receiver(fail_first=2)
    key, _ = setup_org(alert_stack, "alert-retry", receiver, threshold=1)
    wait_until(lambda: blocked(alert_stack, key) == 403, 5, "policy applied")
    blocked(alert_stack, key)
    wait_until(lambda: receiver.received, 20, "alert delivered after retries")
    assert receiver.attempts == 3 and len(receiver.received) == 1
    metrics = httpx.get(alert_stack.authz_metrics + "/metrics").text
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
        assert "`alert-catalog`" in text and "`deepseek` is now allowed" in text and "groq" not in text
    finally:
        alert_stack.admin.load_catalog(original)
    wait_until(lambda: len(receiver.received) == 2, 10, "second catalog alert")
    assert "`deepseek` is now blocked (it fails GDPR (not met))" in receiver.received[1]["text"]


def test_a_hanging_receiver_never_slows_checks(alert_stack):
    receiver = Receiver(hang_s=30)
    key, _ = setup_org(alert_stack, "alert-hang", receiver, threshold=1)
    wait_until(lambda: blocked(alert_stack, key) == 403, 5, "policy applied")
    for _ in range(3):
        blocked(alert_stack, key)
    wait_until(lambda: receiver.attempts >= 1, 10, "delivery under way")
    # Envoy gives authz 200 ms: a Check path waiting on the hung delivery would answer 503s for
    # the whole 30 s hang. A loaded machine may miss the deadline once; a stall cannot recover,
    # so a clean second batch (still inside the hang) tells the two apart.
    statuses = [blocked(alert_stack, key) for _ in range(50)]
    if statuses != [403] * 50:
        statuses = [blocked(alert_stack, key) for _ in range(50)]
    assert statuses == [403] * 50
    assert not receiver.received  # the receiver was hanging all along


def test_alert_settings_are_validated_and_need_enterprise(alert_stack):
    alert_stack.admin.set_plan("alert-pro", "pro")
    h = {"authorization": f"Bearer {alert_stack.token('alert-pro')}"}
    r = httpx.put(
        f"{alert_stack.authz_http}/v1/orgs/alert-pro/alerts",
        headers=h,
        json={"alerts": {"webhook_url": "https://hooks.example/x"}},
    )
    assert r.status_code == 403 and "Enterprise plan required" in r.text
    alert_stack.admin.set_plan("alert-pro", "enterprise")
    r = httpx.put(
        f"{alert_stack.authz_http}/v1/orgs/alert-pro/alerts",
        headers=h,
        json={"alerts": {"webhook_url": "http://10.1.2.3/hook"}},
    )
    assert r.status_code == 400 and "must use https://" in r.text


# --- the webhook is tenant input: it must never reach the pod's own internals ------------------


def _internal_urls(stack: Stack) -> list[str]:
    admin = stack.ports["envoy_admin"]
    return [
        f"http://127.0.0.1:{admin}/quitquitquit",  # the reported attack: Envoy exits for every org
        f"https://127.0.0.1:{admin}/quitquitquit",
        f"https://2130706433:{admin}/quitquitquit",  # decimal
        f"https://0x7f000001:{admin}/quitquitquit",  # hex
        f"https://0177.0.0.1:{admin}/quitquitquit",  # octal
        f"https://127.1:{admin}/quitquitquit",  # short form
        f"https://127.0.0.1.:{admin}/quitquitquit",  # trailing dot
        f"https://[::1]:{admin}/quitquitquit",
        f"https://[::ffff:127.0.0.1]:{admin}/quitquitquit",  # IPv4-mapped
        f"https://[64:ff9b::7f00:1]:{admin}/",  # NAT64
        f"https://[2002:7f00:1::]:{admin}/",  # 6to4
        f"https://localhost:{admin}/quitquitquit",
        f"https://localhost.:{admin}/quitquitquit",
        f"https://{stack.ports['authz_http']}.localhost/",
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://[fd00:ec2::254]/latest/meta-data/",  # AWS metadata over IPv6 (unique-local)
        "https://100.100.100.200/latest/meta-data/",  # Alibaba metadata (shared address space)
        "https://10.0.0.1/hook",
        "https://172.16.0.1/hook",
        "https://192.168.1.1./hook",
        "https://0.0.0.0/hook",
        "https://[::]/hook",
        "https://[fe80::1]/hook",
        "https://user:pass@hooks.example.com/hook",
        "http://hooks.example.com/hook",  # plain http to a host the operator did not allow
        "https://hooks.example.com\\@127.0.0.1/hook",
        "https://hooks.example.com /hook",
    ]


def test_webhooks_to_internal_addresses_are_refused_at_save(alert_stack):
    alert_stack.admin.set_plan("alert-ssrf", "enterprise")
    h = {"authorization": f"Bearer {alert_stack.token('alert-ssrf')}"}
    for url in _internal_urls(alert_stack):
        r = httpx.put(
            f"{alert_stack.authz_http}/v1/orgs/alert-ssrf/alerts",
            headers=h,
            json={"alerts": {"webhook_url": url, "block_threshold": 1}},
        )
        assert r.status_code == 400, (url, r.text)
        assert r.json()["error"]["code"] == "invalid_argument" and "webhook" in r.json()["error"]["message"]
    got = httpx.get(f"{alert_stack.authz_http}/v1/orgs/alert-ssrf/policy", headers=h).json()
    assert got["alerts"]["webhook_url"] == ""
    assert httpx.get(alert_stack.envoy_admin + "/ready").text.strip() == "LIVE"


def _queue_raw_alert(stack: Stack, org: str, url: str) -> None:
    """An alert whose URL never passed the save-time check (stored before it existed, or a name
    whose DNS answer changed since): delivery must refuse it on its own."""
    from authz.alerts.messages import Message

    client = stack.redis.client()
    client.xadd(
        stack.admin.keys.alerts,
        {"org_id": org, "webhook_url": url, "kind": "blocks", "message": Message().text("probe").to_json()},
    )


def test_a_hanging_receiver_does_not_hold_other_orgs_alerts(alert_stack):
    hanging, healthy = Receiver(hang_s=30), Receiver()
    for _ in range(3):  # more than one delivery's worth for the hanging org, queued first
        _queue_raw_alert(alert_stack, "alert-slow", hanging.url)
    wait_until(lambda: hanging.attempts >= 1, 10, "the hanging receiver called")
    started = time.monotonic()
    _queue_raw_alert(alert_stack, "alert-prompt", healthy.url)
    # Sequential delivery would wait out the hanging receiver's 5 s timeout (three times) first.
    wait_until(lambda: healthy.received, 4, "the other org's alert delivered while one receiver hangs")
    assert time.monotonic() - started < 4
    assert hanging.attempts == 1  # one org's alerts still go one at a time, in order


def test_delivery_refuses_internal_targets_even_if_stored(alert_stack):
    import socket

    before = httpx.get(alert_stack.authz_metrics + "/metrics").text
    refused_before = _metric(before, 'authz_alerts_total{outcome="refused"}')
    local = Receiver(host="127.0.0.1")  # not an allowed host: stands for any internal endpoint
    hostname = socket.gethostname()  # a name that resolves to this machine
    urls = [
        local.url,
        f"https://{hostname}:{local.port}/hook",
        f"https://127.0.0.1:{local.port}/hook",
        f"http://127.0.0.1:{alert_stack.ports['envoy_admin']}/quitquitquit",
    ]
    for url in urls:
        _queue_raw_alert(alert_stack, "alert-raw", url)
    wait_until(
        lambda: (
            _metric(httpx.get(alert_stack.authz_metrics + "/metrics").text, 'authz_alerts_total{outcome="refused"}')
            >= refused_before + len(urls)
        ),
        60,
        "every internal target refused",
    )
    assert local.attempts == 0
    assert httpx.get(alert_stack.envoy_admin + "/ready").text.strip() == "LIVE"
    assert "alert_webhook_refused" in alert_stack.authz.log()


def test_redirects_are_never_followed(alert_stack):
    target = Receiver()
    redirecting = Receiver(redirect_to=target.url)
    _queue_raw_alert(alert_stack, "alert-redirect", redirecting.url)
    wait_until(lambda: redirecting.attempts >= 2, 30, "redirecting receiver retried")
    assert target.attempts == 0


def test_alert_text_cannot_mention_or_link(alert_stack):
    receiver = Receiver()
    key, _ = setup_org(alert_stack, "alert-inject", receiver, threshold=1)
    wait_until(lambda: blocked(alert_stack, key) == 403, 5, "policy applied")
    evil = "x <!channel> @everyone @here <https://evil.example|click> [click](https://evil.example) `code` *b*\nline"
    for _ in range(2):
        httpx.post(
            alert_stack.url + "/v1/chat/completions",
            json={"model": evil},
            headers={"authorization": f"Bearer {key}"},
            timeout=10,
        )
    wait_until(lambda: receiver.received, 10, "alert delivered")
    alert = receiver.received[0]
    text, content = alert["text"], alert["content"]
    assert "<!channel>" not in text and "<https://evil" not in text and "&lt;!channel&gt;" in text
    assert alert["allowed_mentions"] == {"parse": []}
    # Every client-controlled value is one inline-code span: no markdown, link or newline escapes it.
    assert (
        "`x &lt;!channel&gt; @everyone @here &lt;https://evil.example|click&gt; [click](https://evil.example)"
        " ˋcodeˋ *b* line`" in text
    )
    assert (
        "`x <!channel> @everyone @here <https://evil.example|click> [click](https://evil.example) ˋcodeˋ *b* line`"
        in content
    )
    assert "\n" not in text and "\n" not in content


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_a_watched_model_that_loses_compliant_providers_alerts_the_org(alert_stack):
    """An org lists the models it depends on; a catalog load that leaves one with fewer
    compliant providers (here none) under its policy sends one alert naming the model and the
    counts, and the preview shows how many providers each watched model keeps. The change
    touches ISO 42001 only, which no other org of this module requires: their receivers (some
    hang on purpose) get nothing to deliver first."""
    receiver = Receiver()
    org = "alert-watched"
    _, h = setup_org(alert_stack, org, receiver, require_iso42001=True)
    bad = httpx.put(
        f"{alert_stack.authz_http}/v1/orgs/{org}/alerts",
        headers=h,
        json={"alerts": {"webhook_url": receiver.url, "watched_models": ["gpt4o"]}},
    )
    assert bad.status_code == 400 and "did you mean 'gpt-4o'" in bad.json()["error"]["message"]
    r = httpx.put(
        f"{alert_stack.authz_http}/v1/orgs/{org}/alerts",
        headers=h,
        json={"alerts": {"webhook_url": receiver.url, "watched_models": ["claude-sonnet-4.5", "gpt-4o"]}},
    )
    assert r.status_code == 200, r.text
    preview = httpx.post(
        f"{alert_stack.authz_http}/v1/orgs/{org}/policy:preview",
        headers=h,
        json={"policy": {"enabled": True, "require_iso42001": True}},
    ).json()
    assert {w["model"]: w["compliant_providers"] for w in preview["watched_models"]} == {
        "claude-sonnet-4.5": 1,  # anthropic
        "gpt-4o": 1,  # azure
    }
    changed = json.loads(SAMPLE_CATALOG.read_text())
    original = copy.deepcopy(changed)
    del changed["providers"]["anthropic"]["data_policy"]["iso42001"]  # Anthropic stops publishing it
    try:
        alert_stack.admin.load_catalog(changed)
        wait_until(lambda: any("Watched models" in m["text"] for m in receiver.received), 20, "watched alert")
        [text] = [m["text"] for m in receiver.received if "Watched models" in m["text"]]
        assert "`claude-sonnet-4.5` has 0 compliant providers (was 1): every request for it is blocked" in text
        assert "gpt-4o" not in text  # unchanged: azure still complies
    finally:
        alert_stack.admin.load_catalog(original)
