"""Settings: file plus environment; bad values stop the service with the key named."""

from __future__ import annotations

import pytest

from authz.config import ConfigError, Settings, load
from authz.server import components


def test_defaults():
    assert load(None, {}) == Settings()


def test_file_then_environment(tmp_path):
    f = tmp_path / "authz.toml"
    f.write_text('model_header = "x-llm-model"\nrefresh_interval_s = 10\n')
    s = load(f, {"AUTHZ_REFRESH_INTERVAL_S": "5", "AUTHZ_ORG_SOURCE": "header", "OTHER": "x"})
    assert (s.model_header, s.refresh_interval_s, s.org_source) == ("x-llm-model", 5.0, "header")
    assert components.read_config(s).org == "x-org-id"


@pytest.mark.parametrize(
    ("file_text", "env", "named"),
    [
        ("modle_header = 'x'\n", {}, "modle_header"),
        ("", {"AUTHZ_REFRSH": "1"}, "AUTHZ_REFRSH"),
        ("refresh_interval_s = 'soon'\n", {}, "refresh_interval_s"),
        ("", {"AUTHZ_MAX_STALENESS_S": "-1"}, "max_staleness_s"),
        ("", {"AUTHZ_ORG_SOURCE": "cookie"}, "org_source"),
        ("", {"AUTHZ_MODEL_HEADER": "X-Model"}, "model_header"),
        ("", {"AUTHZ_GRPC_LISTEN": "9001"}, "grpc_listen"),
        ("", {"AUTHZ_REDIS_URL": "redis-host:7000"}, "redis_url"),
        ("", {"AUTHZ_MAX_STALENESS_S": "10"}, "max_staleness_s"),
        ("events_queue_size = true\n", {}, "events_queue_size"),
        ("x = [\n", {}, "not valid TOML"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, file_text, env, named):
    f = tmp_path / "authz.toml"
    f.write_text(file_text)
    with pytest.raises(ConfigError, match=named):
        load(f, env)


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load("/nonexistent/authz.toml", {})


def test_cluster_needs_a_hash_tagged_prefix():
    with pytest.raises(ConfigError, match="hash tag"):
        load(None, {"AUTHZ_REDIS_CLUSTER": "true"})
    assert load(None, {"AUTHZ_REDIS_CLUSTER": "true", "AUTHZ_KEY_PREFIX": "{authz}:"}).redis_cluster is True
    with pytest.raises(ConfigError, match="not both"):
        load(None, {"AUTHZ_REDIS_CLUSTER": "true", "AUTHZ_KEY_PREFIX": "{a}:", "AUTHZ_REDIS_SENTINELS": "h:1"})


def test_two_listeners_on_one_port_are_refused():
    # Each listener sets SO_REUSEPORT: both would bind and share the connections.
    with pytest.raises(ConfigError, match="'grpc_listen' = '0.0.0.0:9001' and 'http_listen'"):
        load(None, {"AUTHZ_HTTP_LISTEN": "127.0.0.1:9001"})
    with pytest.raises(ConfigError, match="same port"):
        load(None, {"AUTHZ_GRPC_LISTEN": "127.0.0.1:7000", "AUTHZ_METRICS_LISTEN": "127.0.0.1:7000"})
    # The same port on two different addresses is two sockets.
    settings = {"AUTHZ_GRPC_LISTEN": "127.0.0.1:7000", "AUTHZ_HTTP_LISTEN": "127.0.0.2:7000"}
    assert load(None, settings).http_listen == "127.0.0.2:7000"


def test_gateway_settings_are_checked_at_start():
    with pytest.raises(ConfigError, match="static_org_id"):
        load(None, {"AUTHZ_ORG_SOURCE": "static"})
    assert load(None, {"AUTHZ_ORG_SOURCE": "static", "AUTHZ_STATIC_ORG_ID": "acme"}).static_org_id == "acme"
    with pytest.raises(ConfigError, match="routing_enforcement.*strict, header"):
        load(None, {"AUTHZ_ROUTING_ENFORCEMENT": "loose"})
    with pytest.raises(ConfigError, match="naming_profile"):
        load(None, {"AUTHZ_NAMING_PROFILE": "vercel"})
    settings = load(None, {})
    assert (settings.routing_enforcement, settings.naming_profile) == ("strict", "native")


def test_booleans_are_read_as_booleans(tmp_path):
    f = tmp_path / "authz.toml"
    f.write_text('redis_cluster = true\nkey_prefix = "{authz}:"\nstatic_requires_credential = false\n')
    s = load(f, {})
    assert (s.redis_cluster, s.static_requires_credential) == (True, False)  # typed: no string compares
    assert load(None, {"AUTHZ_STATIC_REQUIRES_CREDENTIAL": "No"}).static_requires_credential is False
    for bad in ("redis_cluster = 1\n", 'redis_cluster = "maybe"\n'):
        f.write_text(bad)
        with pytest.raises(ConfigError, match="redis_cluster.*must be true or false"):
            load(f, {})


def test_an_unknown_setting_suggests_the_one_meant(tmp_path):
    f = tmp_path / "authz.toml"
    f.write_text("redis_clustr = true\n")
    with pytest.raises(ConfigError, match="did you mean 'redis_cluster'"):
        load(f, {})
    with pytest.raises(ConfigError, match="AUTHZ_MODEL_HEADR.*did you mean 'model_header'"):
        load(None, {"AUTHZ_MODEL_HEADR": "x-model"})


def test_choice_settings_are_typed_and_checked_at_load():
    """Literal types: mypy checks every comparison; load refuses any other word."""
    from typing import get_args

    from authz.config import NamingProfile, OrgSource, RoutingEnforcement

    assert "jwt" in get_args(OrgSource) and get_args(RoutingEnforcement) == ("strict", "header")
    assert load(None, {"AUTHZ_NAMING_PROFILE": "litellm"}).naming_profile in get_args(NamingProfile)
    with pytest.raises(ConfigError, match="'routing_enforcement' = 'strcit': must be one of strict, header"):
        load(None, {"AUTHZ_ROUTING_ENFORCEMENT": "strcit"})


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("redis://:qx7/zk9#wv3@redis:6379/0", ("qx7", "zk9", "wv3")),
        ("redis://:hunter2#x@redis:6379/0", ("hunter2",)),  # no host left: it would reach localhost
        ("redis://:hunter3@redis:63x9/0", ("hunter3",)),
    ],
)
def test_an_unreadable_redis_url_is_refused_quoting_no_part_of_it(url, secret):
    """A password with '/' or '#' made redis-py's error quote part of it (and a 43-line traceback)."""
    with pytest.raises(ConfigError) as refused:
        load(None, {"AUTHZ_REDIS_URL": url})
    message = str(refused.value)
    assert "redis_password" in message
    assert not any(part in message for part in secret), message


def test_the_redis_password_is_a_setting_of_its_own_and_set_once():
    s = load(None, {"AUTHZ_REDIS_URL": "rediss://redis.example:6380/0", "AUTHZ_REDIS_PASSWORD": "a/b#c@d:e?f"})
    assert (s.redis_url, s.redis_password) == ("rediss://redis.example:6380/0", "a/b#c@d:e?f")
    with pytest.raises(ConfigError, match="set twice"):
        load(None, {"AUTHZ_REDIS_URL": "redis://:x@redis:6379/0", "AUTHZ_REDIS_PASSWORD": "y"})
