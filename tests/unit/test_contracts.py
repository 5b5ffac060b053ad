"""Gateway routing contracts: under the litellm profile every body field LiteLLM may route by
is judged (fallbacks) or refused; its Anthropic pass-through is judged as pinned to Anthropic."""

from __future__ import annotations

import json

import pytest
from envoy.config.core.v3 import base_pb2
from hypothesis import given
from hypothesis import strategies as st

from authz.check import portkey
from authz.check.decision import STRICT, Gateway, decide
from authz.check.parsing import fallbacks
from authz.check.request import ReadConfig, read
from authz.check.response import build, message
from authz.policy import gateways
from authz.policy import rules as policy_rules
from authz.policy.gateways import litellm as litellm_gateway
from authz.policy.gateways import llmgateway as llmgateway_gateway
from authz.policy.gateways import native as native_gateway
from authz.policy.gateways import openrouter as openrouter_gateway
from authz.policy.gateways import portkey as portkey_gateway
from authz.policy.gateways.description import NOTHING, Allowed
from authz.policy.orgs import OrgPolicy
from authz.reasons import Reason
from authz.v1 import policy_pb2
from support.checkrequests import check_request
from support.generated import catalog_index

FULL = dict(soc2=True, iso27001=True, gdpr=True, trains_on_prompts=False, logs_prompts=False)
CATALOG = catalog_index(
    {"azure": FULL, "groq": FULL, "deepseek": {**FULL, "trains_on_prompts": True}, "anthropic": {**FULL, "gdpr": None}},
    {"gpt-4o": ["azure"], "llama-3.3-70b": ["groq"], "deepseek-v3.2": ["deepseek"], "claude-sonnet-4": ["anthropic"]},
)
POLICY = policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True, require_no_prompt_training=True)
ORG = OrgPolicy("acme", 1, policy_rules.rules_of(POLICY), True, True)
LITELLM = Gateway(routing=STRICT, naming="litellm")
NATIVE = Gateway(routing=STRICT)


def judge(body, gateway=LITELLM, path="/v1/chat/completions", headers=None, **kwargs):
    request = check_request(body, headers or {"authorization": "Bearer k"}, path=path, **kwargs)
    return decide(read(request, ReadConfig()), ORG, CATALOG, gateway)


def chat(**extra):
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_a_plain_request_passes_the_contract():
    assert judge(chat(temperature=0.2, stream=True, metadata={"a": "b"}, tags=["x"])).reason is Reason.COMPLIANT


@pytest.mark.parametrize(
    "fallbacks_value",
    [
        ["deepseek-v3.2"],
        [{"model": "deepseek-v3.2"}],
        [{"gpt-4o": ["llama-3.3-70b", "deepseek-v3.2"]}],
        [{"*": ["deepseek-v3.2"]}],
        ["llama-3.3-70b", "deepseek/deepseek-v3.2"],
    ],
)
@pytest.mark.parametrize("field", litellm_gateway.FALLBACKS)
def test_every_fallback_shape_is_judged_like_the_model(field, fallbacks_value):
    verdict = judge(chat(**{field: fallbacks_value}))
    assert not verdict.allowed and verdict.reason in (Reason.NO_COMPLIANT_PROVIDER, Reason.PROVIDER_NOT_COMPLIANT)
    assert "deepseek" in verdict.model and verdict.item.startswith(field + "[")
    assert f"named in '{field}[" in message(verdict)
    # The same body in front of a gateway that reads no fallbacks: judged by its model alone.
    assert judge(chat(**{field: fallbacks_value}), gateway=NATIVE).reason is Reason.COMPLIANT


def test_compliant_fallbacks_pass_and_widen_the_allowed_providers():
    verdict = judge(chat(fallbacks=["llama-3.3-70b"], content_policy_fallbacks=[{"gpt-4o": ["groq/llama-3.3-70b"]}]))
    assert verdict.reason is Reason.COMPLIANT and set(verdict.allowed_providers) == {"azure", "groq"}


def test_empty_and_null_fallbacks_name_nothing():
    assert judge(chat(fallbacks=[], context_window_fallbacks=None)).reason is Reason.COMPLIANT


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"custom_llm_provider": "deepseek"}, "custom_llm_provider"),
        ({"router_settings_override": {"fallbacks": [{"gpt-4o": ["deepseek-v3.2"]}]}}, "router_settings_override"),
        ({"api_base": "http://evil.example"}, "api_base"),
        ({"base_url": "http://evil.example"}, "base_url"),
        ({"api_key": "sk-other"}, "api_key"),
        ({"user_config": {"model_list": []}}, "user_config"),
        ({"model_list": []}, "model_list"),
        ({"Fallbacks": ["deepseek-v3.2"]}, "Fallbacks"),  # not read by LiteLLM, but not known inert either
        ({"fallbacks": "deepseek-v3.2"}, "fallbacks"),
        ({"fallbacks": [{"model": "llama-3.3-70b", "api_base": "http://x"}]}, "fallbacks[0]"),
        ({"fallbacks": [{"gpt-4o": "deepseek-v3.2"}]}, "fallbacks[0]"),
        ({"fallbacks": [7]}, "fallbacks[0]"),
        ({"fallbacks": [{"gpt-4o": [None]}]}, "fallbacks[0].gpt-4o[0]"),
    ],
)
def test_a_field_that_may_route_elsewhere_is_refused_by_name(extra, named):
    verdict = judge(chat(**extra))
    assert verdict.reason is Reason.FIELD_NOT_ALLOWED and verdict.detail == named
    response = build(verdict, "decision", "req-1", ())
    assert response.denied_response.status.code == 400
    assert named in message(verdict)


def test_an_operator_can_declare_a_field_inert():
    gateway = Gateway(routing=STRICT, naming="litellm", extra_body_fields=frozenset({"x_trace"}))
    assert judge(chat(x_trace="1"), gateway=gateway).reason is Reason.COMPLIANT
    assert judge(chat(x_trace="1")).reason is Reason.FIELD_NOT_ALLOWED


def test_form_fields_are_held_to_the_contract_too():
    boundary = "b0undary"

    def form(*fields):
        parts = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields)
        return (parts + f"--{boundary}--\r\n").encode()

    def send(*fields):
        return judge(
            form(*fields), path="/v1/audio/transcriptions", content_type=f"multipart/form-data; boundary={boundary}"
        )

    assert send(("model", "gpt-4o"), ("language", "en")).reason is Reason.COMPLIANT
    refused = send(("model", "gpt-4o"), ("custom_llm_provider", "deepseek"))
    assert refused.reason is Reason.FIELD_NOT_ALLOWED and refused.detail == "custom_llm_provider"
    # LiteLLM's get_form_data strips "[]" and reads the repeats as a list: one is refused as the other.
    for name in ("fallbacks", "fallbacks[]"):
        assert send(("model", "gpt-4o"), (name, "deepseek-v3.2")).reason is Reason.FIELD_NOT_ALLOWED


def test_the_anthropic_pass_through_is_judged_as_pinned_to_anthropic():
    path = "/anthropic/v1/messages"
    body = {"model": "gpt-4o", "max_tokens": 5, "messages": []}
    verdict = judge(body, path=path)
    assert verdict.reason is Reason.PROVIDER_DOES_NOT_SERVE_MODEL and verdict.provider == "anthropic"
    assert judge({**body, "model": "claude-sonnet-4"}, path=path).reason is Reason.PROVIDER_NOT_COMPLIANT
    assert judge({**body, "model": "azure/gpt-4o"}, path=path).reason is Reason.PROVIDER_CONFLICT
    # Envoy AI Gateway serves the Messages API there and routes by the model: judged by it.
    assert judge(body, path=path, gateway=NATIVE).reason is Reason.COMPLIANT


@pytest.mark.parametrize("header", ["x-litellm-api-key", "ocp-apim-subscription-key", "api-key", "x-api-key"])
def test_every_header_litellm_reads_a_key_from_is_a_credential(header):
    facts = read(check_request(chat(), {"authorization": "Bearer k1", header: "Bearer k2"}), ReadConfig())
    assert facts.credential_conflict
    same = read(check_request(chat(), {"authorization": "Bearer k1", header: "Bearer k1"}), ReadConfig())
    assert not same.credential_conflict and same.api_key == "k1"


@given(st.lists(st.sampled_from(["gpt-4o", "llama-3.3-70b", "deepseek-v3.2", "groq/llama-3.3-70b"]), max_size=4))
def test_property_fallbacks_pass_only_when_every_named_model_complies(named):
    verdict = judge(chat(fallbacks=named))
    assert verdict.allowed == all("deepseek" not in m for m in named)


def test_fallback_shapes_read_as_litellm_reads_them():
    # JSON objects arrive as their (key, value) pairs (jsonbody.object_pairs).
    assert fallbacks.fallback_models("fallbacks", [[("a", ["x", "y"])], "z"]) == [
        ("x", "fallbacks[0].a[0]"),
        ("y", "fallbacks[0].a[1]"),
        ("z", "fallbacks[1]"),
    ]
    with pytest.raises(fallbacks.FallbackError):
        fallbacks.fallback_models("fallbacks", [("model", "x")])  # an object, not a list


LLMGATEWAY = Gateway(routing=STRICT, naming="llmgateway")
MIXED = catalog_index(
    {"azure": FULL, "deepseek": {**FULL, "trains_on_prompts": True}}, {"deepseek-v3.2": ["azure", "deepseek"]}
)


def test_llmgateway_keeps_a_pin_only_where_it_honours_x_no_fallback():
    def judge_at(path, body):
        request = check_request(body, {"authorization": "Bearer k"}, path=path)
        return decide(read(request, ReadConfig()), ORG, MIXED, LLMGATEWAY)

    pinned = judge_at("/v1/chat/completions", chat(model="azure/deepseek-v3.2"))
    assert pinned.reason is Reason.COMPLIANT and pinned.allowed_providers == ("azure",)
    # /v1/responses may reroute the pin to any provider of the model: judged unpinned, strict.
    rerouted = judge_at("/v1/responses", {"model": "azure/deepseek-v3.2", "input": "hi"})
    assert rerouted.reason is Reason.ROUTING_NOT_ENFORCEABLE
    # Remembered judgements keep the two apart, in either order.
    assert judge_at("/v1/chat/completions", chat(model="azure/deepseek-v3.2")).reason is Reason.COMPLIANT


def test_every_request_forwarded_to_llmgateway_carries_x_no_fallback_whatever_the_client_sent():
    request = check_request(chat(), {"authorization": "Bearer k", "x-no-fallback": "false"})
    facts = read(request, ReadConfig())
    verdict = decide(facts, ORG, CATALOG, LLMGATEWAY)
    response = build(verdict, "d", "r", facts.owned_headers, gateway_headers=LLMGATEWAY.contract.request_headers)
    set_headers = {h.header.key: (h.header.value, h.append_action) for h in response.ok_response.headers}
    assert set_headers["x-no-fallback"] == ("true", base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD)


OPENROUTER = Gateway(routing=STRICT, naming="openrouter")


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"provider": {"only": ["deepseek"]}}, "provider"),
        ({"provider": {"order": ["azure"], "allow_fallbacks": False}}, "provider"),
        ({"route": "fallback"}, "route"),
        ({"preset": "cheap"}, "preset"),
        ({"plugins": [{"id": "web"}]}, "plugins"),
    ],
)
def test_openrouter_fields_that_choose_the_host_are_refused(extra, named):
    verdict = judge(chat(**extra), gateway=OPENROUTER)
    assert verdict.reason is Reason.FIELD_NOT_ALLOWED and verdict.detail == named


def test_openrouter_models_are_fallbacks_each_judged():
    assert judge(chat(models=["gpt-4o", "llama-3.3-70b"]), gateway=OPENROUTER).reason is Reason.COMPLIANT
    refused = judge(chat(models=["gpt-4o", "deepseek-v3.2"]), gateway=OPENROUTER)
    assert not refused.allowed and refused.model == "deepseek-v3.2" and refused.item == "models[1]"
    # Other fields pass through to the host, which cannot be moved by them.
    assert judge(chat(temperature=1, x_anything=1), gateway=OPENROUTER).reason is Reason.COMPLIANT


@pytest.mark.parametrize("model", ["gpt-4o:nitro", "gpt-4o:floor", "gpt-4o:free", "gpt-4o:online", "openrouter/auto"])
def test_openrouter_routing_suffixes_and_auto_are_unknown_models(model):
    assert judge(chat(model=model), gateway=OPENROUTER).reason is Reason.UNKNOWN_MODEL


UPLOAD_CATALOG = catalog_index(
    {"azure": FULL, "openai": {**FULL, "trains_on_prompts": True}, "deepseek": {**FULL, "trains_on_prompts": True}},
    {"gpt-4o": ["azure"], "deepseek-v3.2": ["deepseek"]},
)


def upload(*fields, headers=None, query="", file_lines=('{"custom_id": "r1", "body": {"model": "gpt-4o"}}',)):
    boundary = "b0undary"
    parts = [(k, v, "") for k, v in fields] + [("file", "\n".join(file_lines), '; filename="in.jsonl"')]
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"{extra}\r\n\r\n{v}\r\n' for k, v, extra in parts
    )
    request = check_request(
        (body + f"--{boundary}--\r\n").encode(),
        {"authorization": "Bearer k", **(headers or {})},
        path="/v1/files" + query,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    names = ReadConfig(routing_headers=LITELLM.contract.headers_read)
    return decide(read(request, names), ORG, UPLOAD_CATALOG, LITELLM)


def test_a_file_upload_is_judged_by_where_litellm_stores_it():
    # No provider named: LiteLLM stores it at OpenAI, which trains on prompts here.
    default = upload(("purpose", "batch"))
    assert default.reason is Reason.PROVIDER_NOT_COMPLIANT and default.provider == "openai"
    assert upload(("purpose", "batch"), headers={"custom-llm-provider": "azure"}).reason is Reason.COMPLIANT
    by_query = upload(("purpose", "batch"), query="?custom_llm_provider=deepseek")
    assert by_query.reason is Reason.PROVIDER_NOT_COMPLIANT and by_query.provider == "deepseek"
    # A file that is no batch input is data sent to that provider all the same.
    assert upload(("purpose", "user_data")).reason is Reason.PROVIDER_NOT_COMPLIANT
    # The form's model: LiteLLM stores the file with that model group's deployment.
    assert upload(("purpose", "batch"), ("model", "gpt-4o")).reason is Reason.COMPLIANT
    assert upload(("purpose", "batch"), ("model", "deepseek-v3.2")).reason is Reason.NO_COMPLIANT_PROVIDER


def test_an_upload_destination_named_two_ways_or_by_the_form_is_refused():
    both = upload(("purpose", "batch"), headers={"custom-llm-provider": "azure"}, query="?custom_llm_provider=openai")
    assert both.reason is Reason.FIELD_NOT_ALLOWED
    for field in ("custom_llm_provider", "target_model_names", "target_storage"):
        refused = upload(("purpose", "batch"), (field, "azure"), headers={"custom-llm-provider": "azure"})
        assert refused.reason is Reason.FIELD_NOT_ALLOWED and refused.detail == field


def test_the_batch_lines_are_still_judged_at_a_compliant_destination():
    lines = ('{"custom_id": "r1", "body": {"model": "deepseek-v3.2"}}',)
    verdict = upload(("purpose", "batch"), headers={"custom-llm-provider": "azure"}, file_lines=lines)
    assert verdict.reason is Reason.NO_COMPLIANT_PROVIDER and verdict.item == "r1"


PORTKEY_CATALOG = catalog_index(
    {"openai": FULL, "deepseek": {**FULL, "trains_on_prompts": True}, "azure": FULL},
    {"gpt-4o": ["openai", "azure"], "deepseek-chat": ["deepseek"], "gpt-4o-mini": ["openai"]},
)
HOSTS = frozenset({("openai", "http://egress:10000/openai/v1")})
PORTKEY = Gateway(routing=STRICT, naming="portkey", allowed=Allowed(custom_hosts=HOSTS))


def portkey_judge(headers, model="gpt-4o"):
    names = ReadConfig(routing_header_prefix="x-portkey-")
    facts = read(check_request(chat(model=model), {"authorization": "Bearer k", **headers}), names)
    return decide(facts, ORG, PORTKEY_CATALOG, PORTKEY)


def config(**c):
    return {"x-portkey-config": json.dumps(c)}


def test_portkey_the_provider_header_pins_the_request():
    ok = portkey_judge({"x-portkey-provider": "openai"})
    assert ok.reason is Reason.COMPLIANT and ok.allowed_providers == ("openai",)
    blocked = portkey_judge({"x-portkey-provider": "deepseek"}, model="deepseek-chat")
    assert blocked.reason is Reason.PROVIDER_NOT_COMPLIANT
    # The same body model does not decide: a provider that does not serve it is refused.
    assert portkey_judge({"x-portkey-provider": "deepseek"}).reason is Reason.PROVIDER_DOES_NOT_SERVE_MODEL
    assert portkey_judge({}).reason is Reason.FIELD_NOT_ALLOWED  # Portkey needs a provider or a config


@pytest.mark.parametrize("mode", ["fallback", "loadbalance"])
def test_portkey_every_target_of_a_strategy_is_judged_with_its_own_model(mode):
    targets = [{"provider": "openai"}, {"provider": "deepseek", "override_params": {"model": "deepseek-chat"}}]
    verdict = portkey_judge(config(strategy={"mode": mode}, targets=targets))
    assert verdict.reason is Reason.PROVIDER_NOT_COMPLIANT and verdict.item == "config.targets[1]"
    assert "named in 'config.targets[1]'" in message(verdict)
    nested = [{"provider": "openai"}, {"strategy": {"mode": "fallback"}, "targets": targets}]
    assert not portkey_judge(config(strategy={"mode": mode}, targets=nested)).allowed
    inherited = {
        "strategy": {"mode": mode},
        "override_params": {"model": "deepseek-chat"},
        "targets": [{"provider": "deepseek"}],
    }
    assert portkey_judge(config(**inherited)).reason is Reason.PROVIDER_NOT_COMPLIANT  # the parent's model
    fine = portkey_judge(
        config(
            strategy={"mode": mode},
            targets=[{"provider": "openai"}, {"provider": "openai", "override_params": {"model": "gpt-4o-mini"}}],
        )
    )
    assert fine.reason is Reason.COMPLIANT


AZURE_CATALOG = catalog_index(
    {"openai": FULL, "azure": FULL, "azure-swedencentral": {**FULL, "processing_regions": ["eu"]}},
    {"gpt-4o": ["openai", "azure", "azure-swedencentral"]},
)
AZURE_PORTKEY = Gateway(
    routing=STRICT,
    naming="portkey",
    allowed=Allowed(
        azure_resources=frozenset({("contoso-se", "azure-swedencentral")}),
        deployments=frozenset({("gpt4o-prod", "gpt-4o")}),
    ),
)


def azure_judge(headers, fields=None):
    names = ReadConfig(routing_header_prefix="x-portkey-")
    facts = read(check_request(chat(model="gpt-4o"), {"authorization": "Bearer k", **headers}), names)
    org = ORG
    if fields is not None:
        p = policy_pb2.CompliancePolicy(**fields)
        org = OrgPolicy("acme", 1, policy_rules.rules_of(p), True, True)
    return decide(facts, org, AZURE_CATALOG, AZURE_PORTKEY)


AZURE = {"x-portkey-provider": "azure-openai"}


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        # Portkey 1.15.2 sends the prompt to https://<resource>.openai.azure.com (getBaseURL): any
        # tenant's resource, in any region, was judged as the catalog's "azure".
        ({**AZURE, "x-portkey-azure-resource-name": "attacker-us", "x-portkey-azure-deployment-id": "gpt4o-prod"},
         "x-portkey-azure-resource-name (not an Azure resource allowed"),
        ({**AZURE, "x-portkey-azure-resource-name": "contoso-se", "x-portkey-azure-deployment-id": "other"},
         "x-portkey-azure-deployment-id (not an Azure deployment"),
        ({**AZURE, "x-portkey-azure-deployment-id": "gpt4o-prod"}, "x-portkey-azure-resource-name"),
        (config(provider="azure-openai", resource_name="attacker-us", deployment_id="gpt4o-prod"),
         "config.resource_name (not an Azure resource allowed"),
        (config(strategy={"mode": "fallback"}, targets=[{"provider": "openai"}, {"provider": "azure-openai",
                "resource_name": "attacker-us", "deployment_id": "gpt4o-prod"}]),
         "config.targets[1].resource_name"),
    ],
)  # fmt: skip
def test_portkey_an_azure_resource_or_deployment_the_operator_did_not_map_is_refused(headers, named):
    verdict = azure_judge(headers)
    assert verdict.reason is Reason.FIELD_NOT_ALLOWED and named in verdict.detail, verdict.detail


def test_portkey_a_mapped_azure_resource_is_judged_as_its_regional_entry_and_deployment_model():
    headers = {**AZURE, "x-portkey-azure-resource-name": "contoso-se", "x-portkey-azure-deployment-id": "gpt4o-prod"}
    eu = {"enabled": True, "data_residency": ["eu"]}
    verdict = azure_judge(headers, eu)
    assert verdict.reason is Reason.COMPLIANT and verdict.allowed_providers == ("azure-swedencentral",)
    # Without a resource the Azure host cannot be told: the catalog's "azure" (region unknown).
    assert azure_judge(AZURE, eu).reason is Reason.PROVIDER_NOT_COMPLIANT
    inherited = config(resource_name="contoso-se", deployment_id="gpt4o-prod", strategy={"mode": "fallback"},
                       targets=[{"provider": "azure-openai"}])  # fmt: skip
    assert azure_judge(inherited, eu).reason is Reason.COMPLIANT


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"x-portkey-config": "pc-abc123"}, "x-portkey-config (a saved config id"),
        ({"x-portkey-virtual-key": "vk"}, "x-portkey-virtual-key"),
        ({"x-portkey-provider": "openai", "x-portkey-custom-host": "http://evil.example/v1"}, "x-portkey-custom-host"),
        (config(provider="openai", custom_host="http://evil.example/v1"), "config.custom_host"),
        (
            config(strategy={"mode": "conditional", "conditions": []}, targets=[{"provider": "openai"}]),
            "config.strategy.mode",
        ),
        (config(provider="openai", virtual_key="vk"), "config.virtual_key"),
        (config(provider="openai", input_guardrails=["pg-x"]), "config.input_guardrails"),
        (
            {"x-portkey-provider": "openai", "x-portkey-default-input-guardrails": "[]"},
            "x-portkey-default-input-guardrails",
        ),
        (
            {"x-portkey-provider": "openai", "x-portkey-huggingface-base-url": "http://x"},
            "x-portkey-huggingface-base-url",
        ),
        ({"x-portkey-config": "{not json"}, "x-portkey-config (not JSON)"),
    ],
)
def test_portkey_what_cannot_be_judged_is_refused_by_name(headers, named):
    verdict = portkey_judge(headers)
    assert verdict.reason is Reason.FIELD_NOT_ALLOWED and verdict.detail.startswith(named), verdict.detail


def test_portkey_an_allowed_custom_host_is_judged_as_its_provider():
    headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": "http://egress:10000/openai/v1/"}
    assert portkey_judge(headers).reason is Reason.COMPLIANT
    # The host allowed for openai is not one for another provider.
    other = {"x-portkey-provider": "azure-openai", "x-portkey-custom-host": "http://egress:10000/openai/v1"}
    assert portkey_judge(other).reason is Reason.FIELD_NOT_ALLOWED


def test_a_litellm_batch_created_with_a_model_is_judged_by_it():
    names = ReadConfig(routing_headers=LITELLM.contract.headers_read)

    def create(body, headers=None, query=""):
        request = check_request(body, {"authorization": "Bearer k", **(headers or {})}, path="/v1/batches" + query)
        return decide(read(request, names), ORG, CATALOG, LITELLM)

    plain = {"input_file_id": "file-1", "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    assert create(plain).reason is Reason.MODEL_FREE
    assert create({**plain, "model": "gpt-4o"}).reason is Reason.COMPLIANT
    assert not create({**plain, "model": "deepseek-v3.2"}).allowed
    assert not create(plain, headers={"x-litellm-model": "deepseek-v3.2"}).allowed
    assert not create(plain, query="?model=deepseek-v3.2").allowed
    mismatch = create({**plain, "model": "gpt-4o"}, headers={"x-litellm-model": "deepseek-v3.2"})
    assert mismatch.reason is Reason.MODEL_MISMATCH
    # In front of another gateway a batch stays model-free.
    assert (
        decide(
            read(check_request({**plain, "model": "deepseek-v3.2"}, path="/v1/batches"), names), ORG, CATALOG, NATIVE
        ).reason
        is Reason.MODEL_FREE
    )


def test_portkey_a_custom_host_header_joins_a_config_that_names_no_provider():
    """constructConfigFromRequestHeaders fills a config without a provider from the headers, the
    custom host included: an unchecked custom host would send the prompt anywhere (a mutant
    that dropped the merge survived every other test)."""
    headers = {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": "http://attacker.example/v1",
        **config(override_params={"model": "gpt-4o"}),
    }
    verdict = portkey_judge(headers)
    assert verdict.reason is Reason.FIELD_NOT_ALLOWED and "custom_host" in verdict.detail
    allowed = {**headers, "x-portkey-custom-host": "http://egress:10000/openai/v1"}
    assert portkey_judge(allowed).reason is Reason.COMPLIANT


def test_each_profile_has_its_own_contract_and_any_other_none():
    assert gateways.contract_for("litellm") is litellm_gateway.GATEWAY.contract
    assert gateways.contract_for("llmgateway") is llmgateway_gateway.GATEWAY.contract
    assert gateways.contract_for("openrouter") is openrouter_gateway.GATEWAY.contract
    assert gateways.contract_for("portkey") is portkey_gateway.GATEWAY.contract
    assert gateways.contract_for("native") is native_gateway.GATEWAY.contract


def test_the_operators_additions_join_only_the_contract_they_belong_to():
    """Inert fields join a contract that lists inert fields (any other field is then refused);
    allowed hosts and Azure resources join only Portkey's, whose headers can name them."""
    extra = frozenset({"x_trace"})
    assert gateways.contract_for("litellm", extra).inert_fields == litellm_gateway.GATEWAY.contract.inert_fields | extra
    assert (
        gateways.contract_for("openrouter", extra) is openrouter_gateway.GATEWAY.contract
    )  # reads only its API's fields
    hosts = Allowed(custom_hosts=frozenset({("openai", "http://egress:10000/openai/v1")}))
    assert gateways.contract_for("portkey", allowed=hosts).allowed == hosts
    assert gateways.contract_for("portkey").allowed == NOTHING
    assert gateways.contract_for("litellm", allowed=hosts) is litellm_gateway.GATEWAY.contract


@pytest.mark.parametrize(
    ("contract", "names", "routes"),
    [
        (litellm_gateway.GATEWAY.contract, ["model", "messages", "temperature"], False),
        (litellm_gateway.GATEWAY.contract, ["model", "fallbacks"], True),  # judged: more than the model read
        (litellm_gateway.GATEWAY.contract, ["model", "custom_llm_provider"], True),
        (openrouter_gateway.GATEWAY.contract, ["model", "messages"], False),
        (openrouter_gateway.GATEWAY.contract, ["model", "provider"], True),
        (openrouter_gateway.GATEWAY.contract, ["models"], True),
        (native_gateway.GATEWAY.contract, ["model", "anything"], False),
    ],
)
def test_which_fields_need_more_than_the_model_read(contract, names, routes):
    assert contract.routes_by(names) is routes


def portkey_refusal(config: object, model: str = "gpt-4o", **headers: str) -> str:
    with pytest.raises(portkey.Refused) as refused:
        portkey.targets({portkey.CONFIG: json.dumps(config), **headers}, model)
    return str(refused.value)


def nested(depth: int) -> dict:
    config: dict = {"provider": "openai"}
    for _ in range(depth):
        config = {"strategy": {"mode": "fallback"}, "targets": [config]}
    return config


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"strategy": {"mode": "fallback"}, "targets": []}, "config.targets"),
        ({"strategy": {"mode": "fallback"}, "targets": {"provider": "openai"}}, "config.targets"),
        ({"strategy": {"mode": "fallback"}, "targets": ["openai"]}, "config.targets[0]"),
        ({"strategy": {"mode": "fallback"}, "targets": [{"provider": ""}]}, "config.targets[0].provider"),
        ({"strategy": {"mode": "fallback"}, "targets": [{"provider": 7}]}, "config.targets[0].provider"),
        ({"provider": "openai", "override_params": "gpt-4o"}, "config.override_params"),
        ({"provider": "openai", "override_params": {"model": ""}}, "config.override_params.model"),
        ({"provider": "openai", "override_params": {"model": 4}}, "config.override_params.model"),
        ({"strategy": "fallback", "targets": [{"provider": "openai"}]}, "config.strategy.mode (None: only"),
        (
            {"strategy": {"mode": "conditional"}, "targets": [{"provider": "openai"}]},
            "config.strategy.mode ('conditional': only fallback, loadbalance, single are judged)",
        ),
        ([{"provider": "openai"}], "x-portkey-config"),  # a list: no config Portkey reads
        (nested(9), "x-portkey-config (more than 8 levels or 64 targets)"),
        (
            {"strategy": {"mode": "loadbalance"}, "targets": [{"provider": "openai"}] * 65},
            "x-portkey-config (more than 8 levels or 64 targets)",
        ),
    ],
)
def test_portkey_each_config_it_cannot_judge_is_refused_naming_where(config, named):
    assert portkey_refusal(config).startswith(named), portkey_refusal(config)


def test_portkey_the_bounds_admit_what_they_name():
    """Eight levels and 64 targets are judged; one more is refused (above)."""
    assert portkey.targets({portkey.CONFIG: json.dumps(nested(8))}, "gpt-4o") == [
        ("openai/gpt-4o", "config" + ".targets[0]" * 8)
    ]
    wide = {"strategy": {"mode": "loadbalance"}, "targets": [{"provider": "openai"}] * 64}
    assert len(portkey.targets({portkey.CONFIG: json.dumps(wide)}, "gpt-4o")) == 64


def test_portkey_a_custom_host_is_compared_without_its_trailing_slash():
    allowed = Allowed(custom_hosts=frozenset({("openai", "http://egress:10000/openai/v1")}))
    headers = {portkey.PROVIDER: "openai", portkey.CUSTOM_HOST: "http://egress:10000/openai/v1/"}
    assert portkey.targets(headers, "gpt-4o", allowed) == [("openai/gpt-4o", portkey.PROVIDER)]
    assert portkey_refusal({"provider": "openai", "custom_host": "http://egress:10000/openai/v1//x"}).startswith(
        "config.custom_host"
    )
