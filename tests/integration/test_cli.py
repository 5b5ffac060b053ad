"""The `authz` command against a real redis-server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import redis

SAMPLE = Path(__file__).resolve().parents[2] / "catalog" / "sample-catalog.json"


def authz(redis_server, *args, stdin=None, prefix="cli:"):
    env = {"AUTHZ_REDIS_URL": redis_server.url, "AUTHZ_KEY_PREFIX": prefix, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "authz", *args], capture_output=True, text=True, input=stdin, env=env, timeout=60
    )


def test_catalog_load_and_bad_catalog_names_the_entry(redis_server, tmp_path):
    ok = authz(redis_server, "catalog", "load", "--init", str(SAMPLE))
    assert ok.returncode == 0 and ok.stdout.strip() == "catalog version 1 stored: 12 providers, 15 models"
    bad = json.loads(SAMPLE.read_text())
    bad["models"]["gpt-4o"]["providers"].append("acme-llm")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    result = authz(redis_server, "catalog", "load", "--init", str(path))
    assert result.returncode == 1
    assert "'gpt-4o'" in result.stderr and "'acme-llm'" in result.stderr


def test_apikey_add_stores_only_the_hash_and_revoke(redis_server):
    # writes need a bootstrapped state (--init: this Redis holds the other tests' prefixes)
    assert authz(redis_server, "catalog", "load", "--init", str(SAMPLE)).returncode == 0
    key = authz(redis_server, "--actor", "ops", "apikey", "add", "acme").stdout.strip()
    assert key.startswith("sk-authz-")
    client = redis.Redis.from_url(redis_server.url)
    [stored] = client.keys("cli:apikey:*")
    assert client.get(stored) == b"acme" and not client.keys(f"*{key}*"), "only the hash is stored"
    key_hash = stored.decode().rsplit(":", 1)[1]
    assert authz(redis_server, "apikey", "add", "beta", "--key", "sk-beta").returncode == 0
    listed = authz(redis_server, "apikey", "list").stdout.splitlines()
    assert f"{key_hash[:12]}  acme" in listed and len(listed) == 2
    assert authz(redis_server, "apikey", "list", "--org", "acme").stdout.splitlines() == [f"{key_hash[:12]}  acme"]
    # revoked by the 12-character key id every surface shows
    revoked = authz(redis_server, "apikey", "revoke", key_hash[:12])
    assert revoked.returncode == 0 and revoked.stdout.strip() == f"revoked {key_hash[:12]}"
    assert [k.decode() for k in client.keys("cli:apikey:*")] != [stored.decode()]
    assert authz(redis_server, "apikey", "list", "--org", "acme").stdout == ""
    missing = authz(redis_server, "apikey", "revoke", key_hash)
    assert missing.returncode == 1 and "no API key" in missing.stderr and "authz apikey list" in missing.stderr
    assert authz(redis_server, "apikey", "revoke", "sk-beta").returncode == 2  # a key is not its id


def test_cli_writes_are_audited_with_the_os_user_not_unknown(redis_server):
    assert authz(redis_server, "catalog", "load", "--init", str(SAMPLE), prefix="actor:").returncode == 0
    [entry] = [json.loads(line) for line in authz(redis_server, "audit", "list", prefix="actor:").stdout.splitlines()]
    assert entry["actor"].startswith("cli:") and entry["actor"] != "cli:unknown"


def test_catalog_load_and_check_read_standard_input(redis_server):
    text = SAMPLE.read_text()
    checked = authz(redis_server, "catalog", "check", "-", stdin=text, prefix="stdin:")
    assert checked.returncode == 0 and checked.stdout.strip() == "ok: 12 providers, 15 models"
    loaded = authz(redis_server, "catalog", "load", "--init", "-", stdin=text, prefix="stdin:")
    assert loaded.returncode == 0 and "catalog version 1 stored" in loaded.stdout
    bad = authz(redis_server, "catalog", "check", "-", stdin="{", prefix="stdin:")
    assert bad.returncode == 1 and "not valid JSON" in bad.stderr


def test_bad_config_is_refused_with_the_key_named(redis_server):
    env = {"AUTHZ_ORG_SOURCE": "cookie", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "authz", "serve"], capture_output=True, text=True, env=env, timeout=30
    )
    assert result.returncode == 2 and "org_source" in result.stderr


def test_only_the_commands_that_use_the_settings_read_them(tmp_path):
    """A typo in an unrelated setting stops the commands that need the settings (naming it and
    the fix), never the local ones."""
    env = {"AUTHZ_REDIS_URLL": "redis://x", "PATH": "/usr/bin:/bin"}
    run = lambda *args: subprocess.run(
        [sys.executable, "-m", "authz", *args], capture_output=True, text=True, env=env, timeout=30
    )
    assert run("catalog", "check", str(SAMPLE)).returncode == 0
    assert run("catalog", "show", "deepseek", "--file", str(SAMPLE)).returncode == 0
    (tmp_path / "p.json").write_text("{")
    local = run("policy", "preview", "acme", str(tmp_path / "p.json"))  # the admin API's client
    assert local.returncode == 1 and "not JSON" in local.stderr
    for args in (("apikey", "list"), ("serve",), ("token", "issue", "acme", "--subject", "a")):
        refused = run(*args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert "AUTHZ_REDIS_URLL" in refused.stderr and "did you mean 'redis_url'" in refused.stderr


def test_events_list_filters_and_tail(redis_server):
    from authz.check.request import ReadConfig, read
    from authz.check.security_event import security_event
    from authz.check.verdict import Verdict
    from authz.events.records import record
    from authz.policy.rules import Unmet
    from authz.reasons import Reason
    from support.checkrequests import check_request

    facts = read(check_request({"model": "m"}), ReadConfig())
    client = redis.Redis.from_url(redis_server.url)
    blocks = [("org-a", "deepseek", "gdpr"), ("org-b", "novita", "gdpr"), ("org-a", "novita", "no_prompt_logging")]
    for org, provider, requirement in blocks:
        verdict = Verdict(
            Reason.PROVIDER_NOT_COMPLIANT,
            org_id=org,
            provider=provider,
            model=f"{provider}/m",
            blocked=((provider, (Unmet(requirement, "not_met"),)),),
        )
        client.xadd("evcli:events:security", record(security_event(verdict, facts, "d", "k")))

    def listed(*filters):
        out = authz(redis_server, "events", "list", *filters, prefix="evcli:")
        assert out.returncode == 0, out.stderr
        return [(e["org_id"], e["providers"][0]["provider"]) for e in map(json.loads, out.stdout.splitlines())]

    assert listed() == [("org-a", "deepseek"), ("org-b", "novita"), ("org-a", "novita")]
    assert listed("--org", "org-a") == [("org-a", "deepseek"), ("org-a", "novita")]
    assert listed("--provider", "novita") == [("org-b", "novita"), ("org-a", "novita")]
    assert listed("--requirement", "no_prompt_logging") == [("org-a", "novita")]
    assert listed("--since", "2999-01-01T00:00") == []
    assert listed("--since", "2000-01-01T00:00") == listed()
    tail = authz(redis_server, "events", "tail", "--count", "1", "--org", "org-b", prefix="evcli:")
    assert [json.loads(line)["org_id"] for line in tail.stdout.splitlines()] == ["org-b"]


def test_events_tail_follow_waits_quietly_until_interrupted(redis_server):
    import signal
    import time

    env = {"AUTHZ_REDIS_URL": redis_server.url, "AUTHZ_KEY_PREFIX": "follow:", "PATH": "/usr/bin:/bin"}
    # A deployed authz's Redis (the CLI refuses to wait on one that is not authz's).
    assert authz(redis_server, "catalog", "load", "--init", str(SAMPLE), prefix="follow:").returncode == 0
    with subprocess.Popen(
        [sys.executable, "-m", "authz", "events", "tail", "--follow", "--count", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            time.sleep(4)  # longer than the Redis client's socket timeout: no event is no error
            assert proc.poll() is None, proc.stderr.read()
            with redis.Redis.from_url(redis_server.url) as client:
                client.xadd(
                    "follow:events:security", {"event_id": "e1", "org_id": "o", "event": '{"org_id": "o", "n": 1}'}
                )
            line = proc.stdout.readline()
            assert json.loads(line) == {"org_id": "o", "n": 1}
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)
        finally:
            proc.kill()


def test_events_tail_count_zero_prints_nothing(redis_server):
    redis.Redis.from_url(redis_server.url).xadd("zero:events:security", {"event": '{"org_id": "o"}'})
    out = authz(redis_server, "events", "tail", "--count", "0", prefix="zero:")
    assert (out.returncode, out.stdout) == (0, "")
    assert authz(redis_server, "events", "tail", "--count", "-1", prefix="zero:").returncode == 2


def test_catalog_show_prints_each_value_with_its_evidence_or_unknown():
    import subprocess
    import sys

    def show(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "authz", "catalog", "show", *args, "--file", str(SAMPLE)],
            capture_output=True,
            text=True,
        )

    out = show("deepseek")
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[1:]}
    assert lines["trains_on_prompts"].split()[1] == "true" and "checked 2026-11-01" in lines["trains_on_prompts"]
    assert lines["soc2"].split()[1] == "unknown" and "[" not in lines["soc2"]
    data = json.loads(show("novita", "--json").stdout)
    assert data["provider"] == "novita" and all(a["value"] is None for a in data["attributes"])
    missing = show("deepsek")
    assert missing.returncode == 1 and "did you mean 'deepseek'?" in missing.stderr


def test_catalog_show_on_the_shipped_catalog_names_the_package_version_operator_and_policy():
    shipped = SAMPLE.parent / "catalog.json"
    out = subprocess.run(
        [sys.executable, "-m", "authz", "catalog", "show", "aws-bedrock-eu-west-2", "--file", str(shipped), "--json"],
        capture_output=True,
        text=True,
    )
    data = json.loads(out.stdout)
    assert data["privacy_policy_url"] == "https://aws.amazon.com/privacy"
    rows = {row["attribute"]: row for row in data["attributes"]}
    assert rows["processing_regions"]["value"] == ["uk"] and "eu-west-2" in rows["processing_regions"]["source"]
    assert rows["gdpr"]["source"].startswith("@llmgateway/models@1.324.0 providers[aws-bedrock].dataPolicy.gdpr")
    assert rows["iso42001"]["value"] is None and rows["iso42001"]["source"] == ""  # not published
    assert data["region_of"] == "aws-bedrock" and data["legal_entity"] == "Amazon Web Services, Inc."
    assert data["website"].startswith("https://aws.amazon.com")


def test_bootstrap_is_idempotent_and_writes_only_differences(redis_server, tmp_path):
    keys = tmp_path / "api-keys"
    keys.write_text("# org key\nacme sk-boot-acme\nbeta sk-boot-beta  # the beta team\n")
    args = ("bootstrap", "--init", "--catalog", str(SAMPLE), "--plan", "acme=enterprise", "--api-keys", str(keys))
    first = authz(redis_server, "--actor", "bootstrap-job", *args, prefix="boot:")
    assert first.returncode == 0, first.stderr
    assert "catalog version 1 stored" in first.stdout and "org acme: plan enterprise" in first.stdout
    audited = authz(redis_server, "audit", "list", prefix="boot:").stdout.splitlines()
    assert len(audited) == 4 and all(json.loads(e)["actor"] == "bootstrap-job" for e in audited)
    again = authz(redis_server, "--actor", "bootstrap-job", *args, prefix="boot:")
    assert again.returncode == 0 and again.stdout.count("unchanged") == 4, again.stdout
    assert authz(redis_server, "audit", "list", prefix="boot:").stdout.splitlines() == audited  # nothing rewritten
    # a key someone else owns is not silently moved to another org
    keys.write_text("beta sk-boot-acme\n")
    moved = authz(redis_server, "bootstrap", "--api-keys", str(keys), prefix="boot:")
    assert moved.returncode == 1 and "belongs to org acme" in moved.stderr
    assert authz(redis_server, "bootstrap", "--plan", "acme", prefix="boot:").returncode == 2


def test_bootstrap_writes_nothing_when_any_of_its_input_is_wrong(redis_server, tmp_path):
    """All or nothing: a key owned by another org stops the run before the catalog, the plans
    or any earlier key is written."""
    keys = tmp_path / "api-keys"
    keys.write_text("acme sk-all-acme\n")
    assert (
        authz(
            redis_server, "bootstrap", "--init", "--catalog", str(SAMPLE), "--api-keys", str(keys), prefix="all:"
        ).returncode
        == 0
    )
    before = authz(redis_server, "audit", "list", prefix="all:").stdout.splitlines()
    keys.write_text("gamma sk-all-gamma\nbeta sk-all-acme\n")  # the second line is someone else's key
    args = ("bootstrap", "--plan", "gamma=enterprise", "--api-keys", str(keys))
    refused = authz(redis_server, *args, prefix="all:")
    assert (
        refused.returncode == 1 and "belongs to org acme" in refused.stderr and "nothing was written" in refused.stderr
    )
    assert authz(redis_server, "audit", "list", prefix="all:").stdout.splitlines() == before
    keys.write_text("gamma sk-twice\ndelta sk-twice\n")
    twice = authz(redis_server, "bootstrap", "--api-keys", str(keys), prefix="all:")
    assert twice.returncode == 1 and "listed for orgs gamma and delta" in twice.stderr
    assert authz(redis_server, "audit", "list", prefix="all:").stdout.splitlines() == before


def test_bootstrap_seeds_a_plan_and_never_undoes_a_later_change(redis_server):
    args = ("bootstrap", "--init", "--catalog", str(SAMPLE), "--plan", "acme=enterprise")
    assert "org acme: plan enterprise" in authz(redis_server, *args, prefix="seed:").stdout
    assert authz(redis_server, "org", "set-plan", "acme", "free", prefix="seed:").returncode == 0
    again = authz(redis_server, *args, prefix="seed:")
    assert again.returncode == 0 and "org acme: plan free kept (set since; bootstrap asks enterprise" in again.stdout
    listed = authz(redis_server, "audit", "list", prefix="seed:").stdout.splitlines()
    assert [json.loads(e)["action"] for e in listed].count("org.set_plan") == 2  # the seed and the change, no undo


def test_org_list_and_show_say_what_redis_holds(redis_server, tmp_path):
    assert authz(redis_server, "catalog", "load", "--init", str(SAMPLE), prefix="orgs:").returncode == 0
    assert authz(redis_server, "org", "set-plan", "acme", "enterprise", prefix="orgs:").returncode == 0
    assert authz(redis_server, "apikey", "add", "beta", "--key", "sk-beta-1", prefix="orgs:").returncode == 0
    listed = authz(redis_server, "org", "list", prefix="orgs:")
    assert listed.stdout.splitlines() == [
        "acme  plan enterprise, no policy, 0 API keys",
        "beta  plan none, no policy, 1 API key",
    ]
    shown = authz(redis_server, "org", "show", "beta", prefix="orgs:")
    assert shown.returncode == 0 and "API key " in shown.stdout
    missing = authz(redis_server, "org", "show", "acmee", prefix="orgs:")
    assert missing.returncode == 1 and "no org 'acmee'" in missing.stderr and "authz org list" in missing.stderr


def test_catalog_show_lists_the_models_a_provider_serves_and_their_deactivations():
    shipped = Path(__file__).resolve().parents[2] / "catalog" / "catalog.json"
    out = subprocess.run(
        [sys.executable, "-m", "authz", "catalog", "show", "deepseek", "--file", str(shipped)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "pin one as deepseek/MODEL" in out.stdout
    assert "    deepseek-v3.2  (deactivated 2026-05-01" in out.stdout


def test_usage_mistakes_and_a_closed_pipe_are_one_line_never_a_traceback(redis_server, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "AUTHZ_WORKERS": "two"}
    run = lambda *args, extra=None: subprocess.run(
        [sys.executable, "-m", "authz", *args], capture_output=True, text=True, env={**env, **(extra or {})}, timeout=60
    )
    workers = run("serve")
    assert workers.returncode == 2 and "'two': a whole number of processes" in workers.stderr
    missing = run("policy", "preview", "acme", str(tmp_path / "nope.json"), extra={"AUTHZ_TOKEN": "t"})
    assert missing.returncode == 2 and "nope.json: No such file or directory" in missing.stderr
    for result in (workers, missing):
        assert "Traceback" not in result.stderr
    # `authz audit list | head -1`: the reader stops early; no BrokenPipeError report
    assert authz(redis_server, "catalog", "load", "--init", str(SAMPLE), prefix="pipe:").returncode == 0
    piped = subprocess.run(
        f"{sys.executable} -m authz audit list | head -c 10 >/dev/null",
        shell=True,
        capture_output=True,
        text=True,
        env={"AUTHZ_REDIS_URL": redis_server.url, "AUTHZ_KEY_PREFIX": "pipe:", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert piped.stderr == "", piped.stderr


def test_a_redis_password_with_any_characters_is_its_own_setting(tmp_path):
    """The password from a Secret, as AUTHZ_REDIS_PASSWORD: '/', '#', '@', ':' and '?' reach
    Redis as they are; the same password inside redis_url is refused in one line quoting no part of it."""
    from devstack.stack import RedisServer

    password = "ab/cd#ef@gh:ij?kl"
    server = RedisServer(tmp_path, password=password).start()
    try:
        base = {"AUTHZ_KEY_PREFIX": "pw:", "PATH": "/usr/bin:/bin"}

        def run(**env):
            return subprocess.run(
                [sys.executable, "-m", "authz", "catalog", "load", "--init", str(SAMPLE)],
                capture_output=True,
                text=True,
                env={**base, **env},
                timeout=60,
            )

        ok = run(AUTHZ_REDIS_URL=server.url, AUTHZ_REDIS_PASSWORD=password)
        assert ok.returncode == 0, ok.stderr
        assert server.client().get("pw:catalog")
        inline = run(AUTHZ_REDIS_URL=f"redis://:{password}@127.0.0.1:{server.port}/0")
        assert inline.returncode != 0 and "redis_password" in inline.stderr
        assert "Traceback" not in inline.stderr and len(inline.stderr.strip().splitlines()) == 1
        assert not any(part in inline.stderr for part in ("ab/cd", "ef@gh", "ij?kl", "cd#ef"))
    finally:
        server.stop()
