"""Policies as code (`authz bootstrap --policies`, `policy diff | apply | history`) and the CLI's
refusal to use a Redis that is not authz's, against real redis-servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
import yaml

from devstack.stack import RedisServer
from support import cli

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "catalog" / "catalog.json"

POLICIES = {
    "orgs": {
        "acme": {
            "plan": "enterprise",
            "policy": {"enabled": True, "require_soc2": True, "provider_denylist": ["deepseek"]},
            "custom_providers": {
                "our-vllm": {"name": "Our vLLM", "models": ["llama-internal"], "attestation": {"soc2": True}}
            },
            "alerts": {"webhook_url": "https://hooks.example.invalid/acme", "block_threshold": 20},
        },
        "beta": {"plan": "pro"},
    }
}


@pytest.fixture
def fresh_redis(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def loaded_redis(tmp_path_factory):
    """A Redis holding the shipped catalog and nothing else, shared by the refusal cases (a refused
    file writes nothing, which each case checks)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    assert authz(server.url, "catalog", "load", str(CATALOG)).returncode == 0
    yield server
    server.stop()


def authz(redis_url, *args, env=None):
    return cli.authz(redis_url, *args, actor="gitops", env=env)


def write(path: Path, document) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def stored(server, org):
    fields = server.client().hgetall(f"authz:org:{org}")
    return {k.decode(): v.decode() for k, v in fields.items()}


def test_gitops_round_trip_file_bootstrap_change_diff_apply_history(fresh_redis, tmp_path):
    policies = write(tmp_path / "policies.yaml", POLICIES)
    # An empty Redis needs no --init: the first run loads the catalog and applies the file.
    first = authz(fresh_redis.url, "bootstrap", "--catalog", str(CATALOG), "--policies", str(policies))
    assert first.returncode == 0, first.stderr
    assert "writing to Redis at redis://127.0.0.1:" in first.stderr
    acme = stored(fresh_redis, "acme")
    assert acme["plan"] == "enterprise" and stored(fresh_redis, "beta")["plan"] == "pro"
    policy = json.loads(acme["policy"])
    assert policy["enabled"] and policy["require_soc2"] and policy["provider_denylist"] == ["deepseek"]
    assert policy["version"] == 1 and policy["updated_by"].startswith("gitops (file policies.yaml@sha256:")
    provider = json.loads(acme["custom_providers"])["providers"]["our-vllm"]
    assert provider["attestation"] == {"soc2": True} and provider["attested_by"].startswith("gitops (file ")
    assert json.loads(acme["alerts"])["block_window_s"] == 300

    # The Job runs again (every sync): nothing changes, nothing is audited again.
    audit_length = fresh_redis.client().xlen("authz:events:audit")
    again = authz(fresh_redis.url, "bootstrap", "--catalog", str(CATALOG), "--policies", str(policies))
    assert again.returncode == 0 and "no changes: Redis holds what policies.yaml@sha256:" in again.stdout
    assert fresh_redis.client().xlen("authz:events:audit") == audit_length
    assert authz(fresh_redis.url, "policy", "diff", str(policies)).returncode == 0

    # A change in git: diff names each field and exits 1, writing nothing.
    changed = json.loads(json.dumps(POLICIES))
    changed["orgs"]["acme"]["policy"]["require_gdpr"] = True
    changed["orgs"]["acme"]["policy"]["provider_denylist"] = ["deepseek", "xai"]
    del changed["orgs"]["acme"]["custom_providers"]["our-vllm"]
    write(policies, changed)
    diff = authz(fresh_redis.url, "policy", "diff", str(policies))
    assert diff.returncode == 1, diff.stderr
    assert (
        "org acme: policy\n    provider_denylist: [deepseek] -> [deepseek, xai]\n    require_gdpr: (unset) -> true"
        in (diff.stdout)
    )
    assert "org acme: custom provider our-vllm\n    removed" in diff.stdout
    assert "writing to Redis" not in diff.stderr and json.loads(stored(fresh_redis, "acme")["policy"])["version"] == 1

    applied = authz(fresh_redis.url, "policy", "apply", str(policies))
    assert applied.returncode == 0, applied.stderr
    policy = json.loads(stored(fresh_redis, "acme")["policy"])
    assert policy["version"] == 2 and policy["require_gdpr"] and policy["provider_denylist"] == ["deepseek", "xai"]
    assert json.loads(stored(fresh_redis, "acme")["custom_providers"]) == {}
    assert authz(fresh_redis.url, "policy", "diff", str(policies)).returncode == 0

    # History, from the audit trail: each version with what changed and which file did it.
    history = authz(fresh_redis.url, "policy", "history", "acme")
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    v1 = next(i for i, line in enumerate(lines) if "  policy v1  by gitops (file policies.yaml@sha256:" in line)
    v2 = next(i for i, line in enumerate(lines) if "  policy v2  by gitops (file policies.yaml@sha256:" in line)
    assert v1 < v2 and lines[v1].split("sha256:")[1] != lines[v2].split("sha256:")[1]  # two versions of the file
    assert lines[v2 + 1 : v2 + 3] == [
        "    provider_denylist: [deepseek] -> [deepseek, xai]",
        "    require_gdpr: (unset) -> true",
    ]
    assert any("custom_provider.delete our-vllm" in line for line in lines)
    assert authz(fresh_redis.url, "audit", "verify").stdout.startswith("ok: ")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["orgs"]["acme"]["policy"].update(provider_denylist=["opneai"]), "did you mean 'openai'?"),
        (lambda d: d["orgs"]["acme"].update(polcy={}), "orgs.acme.polcy: not a setting; did you mean 'policy'?"),
        (lambda d: d["orgs"]["acme"]["policy"].update(version=7), "orgs.acme.policy.version: set by the server"),
        (
            lambda d: d["orgs"]["acme"]["policy"].update(require_sco2=True),
            "unknown field 'require_sco2'; did you mean 'require_soc2'?",
        ),
        (lambda d: d["orgs"]["beta"].update(policy={"enabled": True, "require_gdpr": True}), "Enterprise plan"),
        (lambda d: d["orgs"]["acme"]["alerts"].update(webhook_url="http://10.0.0.1/x"), "webhook_url"),
        (lambda d: d["orgs"]["acme"]["alerts"].update(watched_models=["gpt-4oo"]), "did you mean 'gpt-4o'"),
    ],
)
def test_a_wrong_file_is_refused_whole_naming_the_org_and_field(loaded_redis, tmp_path, edit, message):
    document = json.loads(json.dumps(POLICIES))
    edit(document)
    policies = write(tmp_path / "policies.yaml", document)
    # Every verb reads the file the same way; the first case checks all three, the rest apply.
    verbs = [("policy", "apply"), ("policy", "diff"), ("bootstrap", "--policies")]
    for verb in verbs if "openai" in message else verbs[:1]:
        result = authz(loaded_redis.url, *verb, str(policies))
        assert result.returncode == 2 and message in result.stderr, (verb, result.stderr)
        assert "nothing was written" in result.stderr and "Traceback" not in result.stderr
    assert stored(loaded_redis, "acme") == {} and stored(loaded_redis, "beta") == {}


STRICT_THEN_LAX_YAML = """orgs:
  acme:
    plan: enterprise
    policy: {enabled: true, require_soc2: true, provider_denylist: [deepseek]}
  acme:
    plan: enterprise
    policy: {enabled: false}
"""
NESTED_TWICE_JSON = '{"orgs": {"acme": {"plan": "enterprise", "policy": {"enabled": true, "enabled": false}}}}'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (STRICT_THEN_LAX_YAML, "key 'acme' is given twice, on lines 2 and 5"),
        (NESTED_TWICE_JSON, "key 'enabled' is given twice, on line 1"),
        ('{"orgs": {"acme\u200b": {"plan": "enterprise"}}}', "is not an org id"),  # a zero-width space
        ('{"orgs": {"acme\\u202e": {"plan": "enterprise"}}}', "is not an org id"),  # a right-to-left override
    ],
    ids=["duplicate-org-yaml", "duplicate-field-json", "zero-width-space", "bidi-control"],
)
def test_a_file_a_reviewer_would_misread_is_refused(loaded_redis, tmp_path, text, message):
    """A reviewer reads the strict block, a last-one-wins parser applies the lax one below it; an
    org id with an invisible character looks like the real org and never matches a request."""
    policies = tmp_path / "policies.yaml"
    policies.write_text(text)
    for verb in [("policy", "apply"), ("policy", "diff"), ("bootstrap", "--policies")]:
        result = authz(loaded_redis.url, *verb, str(policies))
        assert result.returncode == 2 and message in result.stderr, (verb, result.stderr)
        assert "Traceback" not in result.stderr
    assert stored(loaded_redis, "acme") == {}


def test_the_plan_gate_can_be_turned_off_for_a_single_company(fresh_redis, tmp_path):
    assert authz(fresh_redis.url, "catalog", "load", str(CATALOG)).returncode == 0
    policies = write(tmp_path / "p.yaml", {"orgs": {"solo": {"policy": {"enabled": True, "require_gdpr": True}}}})
    refused = authz(fresh_redis.url, "policy", "apply", str(policies))
    assert refused.returncode == 2 and "require_enterprise_plan = false" in refused.stderr
    applied = authz(fresh_redis.url, "policy", "apply", str(policies), env={"AUTHZ_REQUIRE_ENTERPRISE_PLAN": "false"})
    assert applied.returncode == 0, applied.stderr
    assert json.loads(stored(fresh_redis, "solo")["policy"])["require_gdpr"]


def test_a_redis_that_is_not_authzs_is_never_read_as_empty_or_written(tmp_path):
    """A foreign Redis (someone else's on 6379): `apikey list` printed nothing and exited 0, and
    `catalog load` made it authz's. Now both name the Redis (never its password) and stop."""
    foreign = RedisServer(tmp_path).start()
    try:
        url = foreign.url.replace("redis://", "redis://:s3cret-pass@")
        foreign.client().config_set("requirepass", "s3cret-pass")
        foreign_client = redis.Redis(port=foreign.port, password="s3cret-pass", socket_timeout=5)
        foreign_client.set("sessions:42", "someone else's")
        listed = authz(url, "apikey", "list")
        assert listed.returncode == 1 and "holds no authz state" in listed.stderr, listed.stderr
        loaded = authz(url, "catalog", "load", str(CATALOG))
        assert (
            loaded.returncode == 1
            and "holds other keys than authz's (authz:*)" in loaded.stderr
            and "--init" in loaded.stderr
        )
        for result in (listed, loaded):
            assert "s3cret-pass" not in result.stderr and f"127.0.0.1:{foreign.port}" in result.stderr
        assert foreign_client.dbsize() == 1  # nothing written
        assert authz(url, "catalog", "load", "--init", str(CATALOG)).returncode == 0  # told to
        assert authz(url, "apikey", "list").returncode == 0
    finally:
        foreign.stop()


def test_each_write_of_a_file_is_conditional_on_what_the_diff_read(fresh_redis):
    """An edit made on the settings page between `policy diff` and `policy apply` fails the
    apply (run it again to re-read) instead of being overwritten unseen: plan, alerts and each
    custom provider, as the policy already was."""
    from authz.admin import declared
    from authz.state.writes import ChangedSinceRead
    from authz.v1 import catalog_pb2, policy_pb2
    from devstack.stack import Admin

    admin = Admin(fresh_redis.url)
    admin.load_catalog(CATALOG)
    admin.set_plan("acme", "pro")
    declaration = declared.parse(json.loads(json.dumps(POLICIES)), "policies.yaml")
    plan = declared.plan_changes(declaration, admin._run(lambda st: declared.stored_orgs(st, declaration)))
    steps = {step.what: step for step in plan.steps if step.org_id == "acme"}
    assert {"plan", "policy", "alerts", "custom provider our-vllm"} <= set(steps)
    # The settings page, in between:
    admin.set_policy("acme", enabled=True, require_gdpr=True)
    admin.set_plan("acme", "team")
    admin._run(lambda st: st.set_alerts("acme", policy_pb2.AlertSettings(block_threshold=5), "page"))
    edited = catalog_pb2.CustomProvider(id="our-vllm", name="edited on the page", models=["llama-internal"])
    admin._run(lambda st: st.set_custom_provider("acme", edited, "page"))
    for what in ("plan", "policy", "alerts", "custom provider our-vllm"):
        with pytest.raises(ChangedSinceRead):
            admin._run(lambda st, what=what: steps[what].write(st, "gitops"))
    fields = stored(fresh_redis, "acme")
    assert fields["plan"] == "team" and '"block_threshold":5' in fields["alerts"].replace(" ", "")
    assert "edited on the page" in fields["custom_providers"]
    assert '"require_gdpr":true' in fields["policy"].replace(" ", "") and "require_soc2" not in fields["policy"]


def test_history_of_an_org_redis_does_not_hold_is_refused_with_the_org_meant(loaded_redis, tmp_path):
    policies = write(tmp_path / "policies.yaml", {"orgs": {"acme-corp": {"plan": "enterprise"}}})
    assert authz(loaded_redis.url, "policy", "apply", str(policies)).returncode == 0
    typo = authz(loaded_redis.url, "policy", "history", "acme-crop")
    assert typo.returncode == 1 and "no org 'acme-crop'; did you mean 'acme-corp'?" in typo.stderr, typo.stderr
    assert "Traceback" not in typo.stderr
