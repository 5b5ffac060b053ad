"""The same policy, two enforcers: LLMGateway's own Provider Compliance Policies feature (its
`lib/compliance.ts`, run in its real gateway built from the source snapshot) and authz in front
of the same gateway with its compliance off.

Two organizations of one gateway hold the same provider keys (every base URL the capture
server, so each request shows which provider the prompt reached): `on` carries the policy in
its own `provider_compliance_policy` and is sent requests straight; `off` carries none and is
sent the same requests through our Envoy, where authz (naming_profile "llmgateway", strict)
judges them by the same policy, mapped by `llmgateway_catalog.policy`, against a catalog built
from the same snapshot's provider data. For generated policies, pinned and unpinned names and
model lists:
- authz never lets a prompt reach a provider when LLMGateway's own feature refuses the request;
- a prompt authz lets through reaches only a provider LLMGateway's feature also serves that
  model from (pinned there);
- every request LLMGateway serves and authz refuses is one of DIFFERENCES, each a reason in
  docs/policy.md ("Two enforcers"), each asserted to still occur.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from authz.policy.imports import llmgateway_catalog as lg
from authz.v1 import catalog_pb2
from devstack.stack import Stack
from support.capture import Capture

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"on": "llmgdev_" + "on" * 16, "off": "llmgdev_" + "off" * 11}
# The providers both orgs hold keys for, and models each serves more than one of.
PROVIDERS = ("together-ai", "cerebras", "deepseek", "groq", "novita", "deepinfra", "nebius", "fireworks")
MODELS = ("glm-4.7", "gpt-oss-120b", "deepseek-v4-pro", "deepseek-v4-flash", "kimi-k3", "llama-3.3-70b-instruct")
# The org's own (custom) providers, each with the compliance attestation its key carries.
CUSTOM = {
    "corp-none": None,
    "corp-full": {
        "soc2": 2,
        "iso27001": True,
        "gdpr": True,
        "apiTraining": False,
        "promptLogging": False,
        "retentionPeriod": "0 days",
        "headquarters": "US",
    },
    "corp-some": {"soc2": 1, "gdpr": True, "apiTraining": False, "headquarters": "US"},
    "corp-poor": {"soc2": None, "gdpr": False, "promptLogging": True, "headquarters": "CN"},
}
CUSTOM_MODEL = "internal-model"

# Requests LLMGateway's feature serves and authz refuses, and why (docs/policy.md).
DIFFERENCES = {
    "unpinned: strict judges every provider of the model": (
        "LLMGateway drops the non-compliant providers and routes among the rest; authz cannot "
        "choose the provider, so in strict mode an unpinned name passes only when every provider "
        "of it complies (the 403 names the pinned spellings that pass)"
    ),
    "an own provider's attestation that does not state stealth": (
        "LLMGateway's attestation has no stealth field and passes blockStealthProviders; authz "
        "needs the attestation to state it (unknown fails closed)"
    ),
}


def published_policies() -> list[dict]:
    """A seeded sample of LLMGateway policies: requirement flags, countries, provider and model
    lists, and a disabled one."""
    rnd = random.Random(7)
    flags = list(lg.POLICY_FLAGS)
    out: list[dict] = [{"enabled": False, "requireSoc2": True, "blockedProviders": ["novita"]}]
    for _ in range(7):
        policy: dict = {"enabled": True, **{f: rnd.random() < 0.25 for f in flags}}
        extra = rnd.choice(
            [
                {},
                {"blockedProviders": rnd.sample(PROVIDERS, 2)},
                {"allowedProviders": rnd.sample(PROVIDERS, 4)},
                {"allowedCountries": ["US"]},
                {"blockedModels": [rnd.choice(MODELS)]},
                {"allowedModels": rnd.sample(MODELS, 3)},
            ]
        )
        out.append({**policy, **extra})
    out.append({"enabled": True, "blockedProviders": ["deepseek", "novita"]})
    out.append({"enabled": True, "blockStealthProviders": True})
    return out


@pytest.fixture(scope="module")
def gateway(llmgateway_gateway, capture):
    keys = {p: f"http://127.0.0.1:{capture.port}/{p}" for p in PROVIDERS}
    custom = {name: (f"http://127.0.0.1:{capture.port}/{name}", attested) for name, attested in CUSTOM.items()}
    for org, key in KEYS.items():
        llmgateway_gateway.seed(org, key, keys, plan="enterprise", custom=custom)
    llmgateway_gateway.psql("DELETE FROM model_provider_mapping_history")  # no uptime history: routing by price
    return llmgateway_gateway


@pytest.fixture(scope="module")
def catalog(gateway, tmp_path_factory):
    """authz's catalog from the same provider data the gateway runs (its packages/models)."""
    out = tmp_path_factory.mktemp("catalog") / "catalog.json"
    models = gateway.build.tree / "packages" / "models"
    built = subprocess.run(
        [sys.executable, "-m", "authz", "catalog", "build", "--from", "llmgateway", str(models), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    return out


@pytest.fixture(scope="module")
def stack(gateway, catalog, tmp_path_factory):
    s = Stack.start(
        tmp_path_factory.mktemp("two-enforcers-stack"),
        upstream_port=int(gateway.url.rpartition(":")[2]),
        authz_settings={"naming_profile": "llmgateway", "routing_enforcement": "strict"},
    )
    s.admin.load_catalog(catalog)
    s.admin.set_plan("off", "enterprise")
    s.admin.add_api_key(KEYS["off"], "off")
    for name, attested in CUSTOM.items():  # the same own providers, as authz holds them
        own = catalog_pb2.CustomProvider(id=name, name=name, models=[CUSTOM_MODEL])
        if attested is not None:
            own.attestation.CopyFrom(lg.attestation(attested))
        s.admin._run(lambda store, own=own: store.set_custom_provider("off", own, "test"))
    s.wait_ready()
    yield s
    s.stop()


def serving(catalog: Path) -> dict[str, list[str]]:
    models = json.loads(catalog.read_text())["models"]
    return {m: [p for p in models[m].get("providers", []) if p in PROVIDERS] for m in MODELS}


_client = httpx.Client(timeout=60)


def reached(capture: Capture, url: str, key: str, model: str) -> tuple[httpx.Response, list[str]]:
    """The answer, and the providers the prompt reached."""
    with capture.lock:
        capture.seen.clear()
    body = {"model": model, "messages": [{"role": "user", "content": "the prompt"}]}
    r = _client.post(f"{url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})
    return r, capture.providers()


def requests_of(providers_of: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """Each name sent, with the providers it may reach: unpinned and pinned per model, and each
    own provider pinned."""
    sent = [(m, ps) for m, ps in providers_of.items()]
    sent += [(f"{p}/{m}", [p]) for m, ps in providers_of.items() for p in ps]
    return sent + [(f"{own}/{CUSTOM_MODEL}", [own]) for own in CUSTOM]


def difference(published: dict, name: str, refusal: httpx.Response) -> str | None:
    """Which listed difference explains LLMGateway serving what authz refused (None: none)."""
    if refusal.status_code != 403:
        return None
    own = name.split("/")[0]
    if own not in CUSTOM:
        return "unpinned: strict judges every provider of the model" if "/" not in name else None
    failed = set(refusal.json()["error"].get("failed_requirements", []))
    if CUSTOM[own] is not None and failed == {"no_stealth_provider"}:
        return "an own provider's attestation that does not state stealth"
    return None


def test_authz_never_lets_through_what_llmgateways_own_feature_refuses(gateway, stack, capture, catalog):
    providers_of = serving(catalog)
    assert all(len(p) >= 2 for p in providers_of.values()), providers_of
    compared, differences, violations, outcomes = 0, Counter(), [], Counter()
    for published in published_policies():
        policy = json.dumps(published)
        gateway.psql(f"UPDATE organization SET provider_compliance_policy = '{policy}'::jsonb WHERE id = 'on'")
        stack.admin._run(lambda s, p=published: s.set_policy("off", lg.policy(p), "test"))
        for name, providers in requests_of(providers_of):
            gateway.forget_choices()  # its cached org and sticky choices
            theirs_answer, theirs = reached(capture, gateway.url, KEYS["on"], name)
            ours_answer, ours = reached(capture, stack.url, KEYS["off"], name)
            compared += 1
            outcomes[(bool(theirs), bool(ours))] += 1
            case = (policy, name, theirs_answer.status_code, theirs, ours_answer.status_code, ours)
            model = name.split("/", 1)[-1]
            if ours and not theirs:
                violations.append(("authz let through what LLMGateway refused", *case))
            elif ours and not set(ours) <= {p for p in providers if _serves(gateway, capture, p, model, policy)}:
                violations.append(("authz sent it to a provider LLMGateway refuses", *case))
            elif theirs and not ours:
                kind = difference(published, name, ours_answer)
                if kind:
                    differences[kind] += 1
                else:
                    violations.append(("an unexplained difference", *case, ours_answer.text[:300]))
    print(f"compared {compared}: {outcomes}; differences {dict(differences)}")
    assert compared >= 100
    assert violations == [], violations[:5]
    assert set(differences) == set(DIFFERENCES), differences  # each listed difference still occurs


_SERVED: dict[tuple[str, str, str], bool] = {}


def _serves(gateway, capture, provider: str, model: str, policy: str) -> bool:
    """Whether LLMGateway's feature, under the policy the `on` org holds now, serves the model
    from this provider when pinned there (cached per policy)."""
    key = (policy, provider, model)
    if key not in _SERVED:
        gateway.forget_choices()
        _, reached_providers = reached(capture, gateway.url, KEYS["on"], f"{provider}/{model}")
        _SERVED[key] = reached_providers == [provider]
    return _SERVED[key]


def test_docs_list_exactly_these_differences():
    text = (ROOT / "docs" / "policy.md").read_text().split("## Two enforcers", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ") and "---" not in line}
    rows.discard("difference")
    assert rows == set(DIFFERENCES)
