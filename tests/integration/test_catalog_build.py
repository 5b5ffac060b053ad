"""`authz catalog build --from llmgateway`: LLMGateway's published package (read by Node) into a
catalog, and `authz catalog check --against litellm`, a second source that is only reported.

The pinned package (tools/llmgateway, installed by `make test`) must build into exactly the
committed catalog; an earlier published version (pinned beside it) builds with the same command;
a package with a field nobody maps is refused until allowed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from authz.policy import catalog as catalog_mod
from authz.v1 import catalog_pb2

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "llmgateway" / "node_modules"
PINNED = TOOLS / "@llmgateway" / "models"
EARLIER = TOOLS / "llmgateway-models-earlier"  # npm alias of an earlier published version
SHIPPED = ROOT / "catalog" / "catalog.json"
BOOTSTRAP = ROOT / "deploy" / "k8s" / "components" / "bootstrap" / "catalog.json"


def authz(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authz", "catalog", *args], capture_output=True, text=True, timeout=180, env=os.environ
    )


def build(package: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], catalog_pb2.Catalog | None]:
    done = authz("build", "--from", "llmgateway", str(package), *args)
    return done, (catalog_mod.parse(done.stdout) if done.returncode == 0 else None)


def test_the_shipped_catalog_is_exactly_what_the_pinned_package_builds():
    assert PINNED.exists(), "make test installs tools/llmgateway"
    shipped = json.loads(SHIPPED.read_text())
    done = authz("build", "--from", "llmgateway", str(PINNED), "--checked-at", shipped["published_at"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == shipped, "run: make catalog (then review authz catalog diff)"
    assert json.loads(BOOTSTRAP.read_text()) == shipped, "make catalog copies it to the bootstrap component"
    version = json.loads((PINNED / "package.json").read_text())["version"]
    assert f"@llmgateway/models@{version}" in shipped["description"]
    assert "not mapped" not in done.stderr  # every field of the pinned version is mapped or left out on purpose


def test_an_earlier_published_version_builds_with_the_same_command():
    version = json.loads((EARLIER / "package.json").read_text())["version"]
    done, built = build(EARLIER, "--checked-at", "2026-12-03")
    assert done.returncode == 0, done.stderr
    assert built is not None
    described = [p for p in built.providers.values() if not p.region_of and p.data_policy.evidence]
    assert len(described) >= 30
    for provider in described:  # every value names that version
        for attribute, evidence in provider.data_policy.evidence.items():
            assert evidence.source.startswith(f"@llmgateway/models@{version} providers["), (provider.id, attribute)
            assert evidence.checked_at == "2026-12-03"
    ended = [(m, d) for m, s in built.models.items() for d in s.deactivated]
    assert len(ended) > 100
    assert all(d.provider not in built.models[m].providers for m, d in ended if d.at[:10] <= "2026-12-03")
    # That version has no isStealthProvider: stealth stays unknown rather than guessed.
    assert not any(p.data_policy.HasField("stealth") for p in built.providers.values())
    assert f"built from @llmgateway/models@{version}" in done.stderr


def write_package(directory: Path, providers: list[dict], models: list[dict], version: str = "9.9.9") -> Path:
    """A package as @llmgateway/models is laid out: package.json with an ES module entry."""
    directory.mkdir(parents=True)
    (directory / "package.json").write_text(
        json.dumps(
            {
                "name": "@llmgateway/models",
                "version": version,
                "type": "module",
                "exports": {".": {"import": "./dist/index.js"}},
            }
        )
    )
    (directory / "dist").mkdir()
    (directory / "dist" / "index.js").write_text(
        f"export const providers = {json.dumps(providers)};\n"
        f"export const models = {json.dumps(models)};\n"
        "for (const m of models) for (const p of m.providers)\n"
        "  if (p.deactivatedAt) p.deactivatedAt = new Date(p.deactivatedAt);\n"
        "export function isStealthProvider(p) { return Boolean(p.env?.required?.baseUrl); }\n"
    )
    return directory


PROVIDER = {
    "id": "acme",
    "name": "Acme AI",
    "env": {"required": {"apiKey": "ACME_KEY"}},
    "website": "https://acme.example",
    "legalEntity": "Acme AI Ltd",
    "headquarters": "DE",
    "dataPolicy": {"apiTraining": False, "promptLogging": False, "retentionPeriod": "0 days", "soc2": 2, "gdpr": True},
    "regionConfig": {
        "defaultRegion": "global",
        "regions": [{"id": "global", "label": "Global"}, {"id": "eu-central-1", "label": "Frankfurt"}],
        "endpointMap": {
            "global": "https://api.acme.example",
            "eu-central-1": "https://bedrock-runtime.eu-central-1.amazonaws.com",
        },
    },
}


def test_a_field_nobody_maps_is_refused_until_allowed(tmp_path):
    added = {**PROVIDER, "dataResidency": ["eu"], "dataPolicy": {**PROVIDER["dataPolicy"], "trainsOnOutputs": True}}
    package = write_package(tmp_path / "models", [added], [{"id": "m", "providers": [{"providerId": "acme"}]}])
    refused, _ = build(package)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "not mapped: providers[acme].dataResidency" in refused.stderr
    assert "not mapped: providers[acme].dataPolicy.trainsOnOutputs" in refused.stderr
    assert "--allow-new-fields" in refused.stderr and "@llmgateway/models@9.9.9 has 2 field(s)" in refused.stderr
    allowed, built = build(package, "--allow-new-fields")
    assert allowed.returncode == 0 and built is not None
    assert "left out: providers[acme].dataResidency" in allowed.stderr
    assert built.providers["acme"].data_policy.gdpr is True


def test_deactivations_regions_and_evidence_of_a_package(tmp_path):
    models = [
        {
            "id": "m",
            "providers": [
                {"providerId": "acme", "regions": [{"id": "eu-central-1"}]},
                {"providerId": "gone", "deactivatedAt": "2026-01-01T00:00:00.000Z"},
                {"providerId": "later", "deactivatedAt": "2027-01-01T00:00:00.000Z"},
            ],
        },
        {"id": "retired", "providers": [{"providerId": "acme", "deactivatedAt": "2026-02-01T00:00:00.000Z"}]},
        {"id": "auto", "providers": [{"providerId": "llmgateway"}]},
    ]
    others = [{"id": p, "name": p.title(), "env": {"required": {}}} for p in ("gone", "later")]
    stealthy = {"id": "shade", "name": "Shade", "env": {"required": {"baseUrl": "SHADE_URL"}}}
    package = write_package(tmp_path / "models", [PROVIDER, *others, stealthy], models)
    done, built = build(package, "--checked-at", "2026-06-01")
    assert done.returncode == 0, done.stderr
    assert built is not None
    assert list(built.models["m"].providers) == ["acme", "acme-eu-central-1", "later"]
    assert {d.provider: d.at for d in built.models["m"].deactivated} == {
        "gone": "2026-01-01T00:00:00.000Z",
        "later": "2027-01-01T00:00:00.000Z",  # still a candidate until then
    }
    assert not built.models["retired"].providers and built.models["retired"].deactivated[0].provider == "acme"
    assert "auto" not in built.models  # LLMGateway picks the model: a routing placeholder, not a model
    regional = built.providers["acme-eu-central-1"]
    assert regional.region_of == "acme" and list(regional.data_policy.processing_regions) == ["eu"]
    assert "acme-global" not in built.providers
    acme = built.providers["acme"]
    assert acme.legal_entity == "Acme AI Ltd" and acme.website == "https://acme.example"
    assert acme.data_policy.evidence["soc2"].source == "@llmgateway/models@9.9.9 providers[acme].dataPolicy.soc2"
    assert acme.data_policy.evidence["soc2"].checked_at == "2026-06-01" and built.published_at == "2026-06-01"
    assert built.providers["shade"].data_policy.stealth is True
    assert "1 mappings deactivated" not in done.stderr and "2 mappings deactivated by then" in done.stderr


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d.mkdir(), "no package.json here"),
        (lambda d: (d.mkdir(), (d / "package.json").write_text('{"name": "left-pad"}')), 'not "@llmgateway/models"'),
    ],
)
def test_a_directory_that_is_not_the_package_is_named(tmp_path, make, message):
    make(tmp_path / "pkg")
    done, _ = build(tmp_path / "pkg")
    assert done.returncode == 1 and message in done.stderr


def litellm_data() -> Path:
    found = sorted(
        ROOT.glob(".venv-litellm/lib/python3*/site-packages/litellm/model_prices_and_context_window_backup.json")
    )
    assert found, "make test installs LiteLLM in .venv-litellm"
    return found[0]


def test_litellm_is_a_second_source_that_is_reported_never_applied(tmp_path):
    prices = {
        "sample_spec": {"mode": "chat"},
        "gpt-4o": {"litellm_provider": "openai"},
        "text-embedding-3-small": {"litellm_provider": "openai"},
        "azure/gpt-4o": {"litellm_provider": "azure"},
        "together_ai/llama-3.3-70b-instruct": {"litellm_provider": "together_ai"},
        "groq/gpt-4o": {"litellm_provider": "groq"},
    }
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(prices))
    sample = ROOT / "catalog" / "sample-catalog.json"
    done = authz("check", str(sample), "--against", "litellm", "--litellm-data", str(path), "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["compared_providers"] == ["azure", "groq", "openai", "together"]
    assert ["openai", "gpt-4.1-mini"] in found["only_in_catalog"]  # the sample says so, LiteLLM's data not
    assert ["openai", "gpt-4o"] not in found["only_in_catalog"]  # both say so
    assert found["only_in_litellm"] == [["groq", "gpt-4o"]]  # LiteLLM says so, the sample does not
    assert "anthropic" in found["unknown_to_litellm"]
    before = sample.read_text()
    text = authz("check", str(sample), "--against", "litellm", "--litellm-data", str(path))
    assert "disagreements, reported only" in text.stdout and sample.read_text() == before


def test_the_shipped_catalog_against_the_installed_litellms_own_data():
    done = authz("check", str(SHIPPED), "--against", "litellm", "--litellm-data", str(litellm_data()), "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert {"openai", "anthropic", "aws-bedrock", "azure", "google-vertex"} <= set(found["compared_providers"])
    # Both sources agree that OpenAI serves gpt-4o: a disagreement list is what is left.
    assert ["openai", "gpt-4o"] not in found["only_in_catalog"]


def test_without_litellm_installed_the_check_says_where_to_point_it():
    done = authz("check", str(SHIPPED), "--against", "litellm")
    assert done.returncode == 2 and "--litellm-data" in done.stderr


def test_a_mapping_deactivated_on_the_catalogs_own_day_is_no_candidate(tmp_path):
    """`deactivatedAt` on the day the catalog is read: from that day the gateway no longer sends
    the model there (a mutant keeping it survived every other test)."""
    models = [
        {
            "id": "m",
            "providers": [
                {"providerId": "acme"},
                {"providerId": "today", "deactivatedAt": "2026-06-01T00:00:00.000Z"},
                {"providerId": "tomorrow", "deactivatedAt": "2026-06-02T00:00:00.000Z"},
            ],
        }
    ]
    others = [{"id": p, "name": p.title(), "env": {"required": {}}} for p in ("today", "tomorrow")]
    done, built = build(write_package(tmp_path / "models", [PROVIDER, *others], models), "--checked-at", "2026-06-01")
    assert done.returncode == 0, done.stderr
    assert built is not None and list(built.models["m"].providers) == ["acme", "tomorrow"]


def test_a_region_whose_primary_and_fallback_endpoints_differ_is_no_region(tmp_path):
    """LLMGateway falls back from a region's endpoint to its fallback endpoint: when the two lie
    in different regions, the prompt may be processed in either, so no residency is published
    (a mutant reading either one alone survived every other test: a wrongful residency pass)."""
    split = {
        **PROVIDER,
        "id": "split",
        "regionConfig": {
            "regions": [{"id": "eu-central-1", "label": "Frankfurt"}],
            "endpointMap": {"eu-central-1": "https://bedrock-runtime.eu-central-1.amazonaws.com"},
            "endpointFallbackMap": {"eu-central-1": "https://bedrock-runtime.us-east-1.amazonaws.com"},
        },
    }
    same = {
        **split,
        "id": "same",
        "regionConfig": {
            **split["regionConfig"],
            "endpointFallbackMap": {"eu-central-1": "https://bedrock-runtime.eu-west-1.amazonaws.com"},
        },
    }
    models = [{"id": "m", "providers": [{"providerId": "split"}, {"providerId": "same"}]}]
    done, built = build(write_package(tmp_path / "models", [split, same], models), "--checked-at", "2026-06-01")
    assert done.returncode == 0, done.stderr
    assert built is not None
    assert list(built.providers["split-eu-central-1"].data_policy.processing_regions) == []
    assert list(built.providers["same-eu-central-1"].data_policy.processing_regions) == ["eu"]
