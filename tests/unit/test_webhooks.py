"""The webhook guard, alone: every spelling of a non-public address is refused, public https
passes, and the operator's own hosts are the only exception."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authz.alerts.webhook_guard import AddressRefused, Target, WebhookGuard, WebhookRefused, is_public, literal_address

GUARD = WebhookGuard.from_setting("alerts.internal:8443, 127.0.0.7")


def _non_public_v4() -> st.SearchStrategy[ipaddress.IPv4Address]:
    nets = [
        ipaddress.ip_network(n)
        for n in (
            "127.0.0.0/8",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "169.254.0.0/16",
            "100.64.0.0/10",
            "0.0.0.0/8",
        )
    ]
    return st.sampled_from(nets).flatmap(
        lambda n: st.integers(0, n.num_addresses - 1).map(lambda i: n.network_address + i)
    )


def _spellings(ip: ipaddress.IPv4Address) -> list[str]:
    n = int(ip)
    octets = str(ip).split(".")
    return [
        str(ip),
        f"{ip}.",
        str(n),
        hex(n),
        ".".join("0" + oct(int(o))[2:] for o in octets),
        f"{octets[0]}.{(n & 0xFFFFFF)}",
        f"[::ffff:{ip}]",
        f"[64:ff9b::{ip}]",
    ]


@given(_non_public_v4().filter(lambda ip: str(ip) != "127.0.0.7"))  # the operator's own host in GUARD
def test_every_spelling_of_a_non_public_ipv4_address_is_refused(ip):
    for host in _spellings(ip):
        with pytest.raises(WebhookRefused):
            GUARD.target(f"https://{host}/hook")


@pytest.mark.parametrize(
    "text",
    [
        "::1",
        "::",
        "fe80::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:10.0.0.1",
        "2002:a00:1::",
        "2001::1",
        "64:ff9b::a9fe:a9fe",
    ],
)
def test_non_public_ipv6_addresses(text):
    assert not is_public(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(text):
    assert is_public(ipaddress.ip_address(text))


def test_literal_address_reads_legacy_forms():
    assert literal_address("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("0x7f.1") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("hooks.slack.com") is None
    assert literal_address("deadbeef.example") is None


@pytest.mark.parametrize(
    "url",
    ["https://hooks.slack.com/services/T0/B0/x", "https://discord.com/api/webhooks/1/abc", "https://8.8.8.8/hook"],
)
def test_public_https_urls_pass(url):
    assert not GUARD.target(url).operator_allowed


def test_operator_hosts_may_use_http_and_private_addresses():
    assert GUARD.target("http://alerts.internal:8443/hook").operator_allowed
    assert GUARD.target("http://127.0.0.7:9999/hook").operator_allowed
    with pytest.raises(WebhookRefused, match="https"):
        GUARD.target("http://alerts.internal:8080/hook")  # allowed on 8443 only
    with pytest.raises(WebhookRefused):
        GUARD.target("http://127.0.0.1:9999/hook")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/",
        "https:///x",
        "https://user@hooks.example.com/",
        "https://exa mple.com/",
        "https://bücher.example/",
        "https://a_b..c/",
        "https://hooks.example.com:99999/",
        "https://" + "a" * 3000 + ".com/",
    ],
)
def test_malformed_urls_are_refused(url):
    with pytest.raises(WebhookRefused):
        GUARD.target(url)


def test_save_time_check_resolves_names():
    with pytest.raises(WebhookRefused, match="resolves to .*non-public"):
        asyncio.run(GUARD.check_url(f"https://{_name_of_loopback()}/hook"))


def test_resolver_refuses_names_of_internal_addresses():
    async def go():
        resolver = GUARD.resolver()
        try:
            with pytest.raises(AddressRefused):
                await resolver.resolve(_name_of_loopback(), 443)
        finally:
            await resolver.close()

    asyncio.run(go())


def _name_of_loopback() -> str:
    """A name (not 'localhost', which is refused by name) that resolves to this machine."""
    import socket

    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 443)}
    except OSError:
        pytest.skip("this machine's host name does not resolve")
    if any(is_public(ipaddress.ip_address(a.split("%")[0])) for a in addresses):
        pytest.skip("this machine's host name resolves to a public address")
    return name


def test_targets_are_normalised_with_default_ports():
    assert GUARD.target("https://Hooks.Example.COM./x") == Target("https", "hooks.example.com", 443, False)
    assert GUARD.target("https://hooks.example.com:8443/x").port == 8443
    allowed = GUARD.target("http://127.0.0.7/x")
    assert (allowed.scheme, allowed.host, allowed.port, allowed.operator_allowed) == ("http", "127.0.0.7", 80, True)


def test_operator_hosts_are_read_case_and_dot_insensitively():
    guard = WebhookGuard.from_setting(" Alerts.Internal.:8443 ,, [::1]:9000,hooks.corp ")
    assert guard.allowed_hosts == frozenset({"alerts.internal.:8443", "[::1]:9000", "hooks.corp"})
    assert guard.target("http://hooks.corp/x").operator_allowed
    assert guard.target("http://HOOKS.CORP./x").operator_allowed
    assert guard.target("http://[::1]:9000/x").operator_allowed
    assert WebhookGuard.from_setting("").allowed_hosts == frozenset()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://hooks.example.com/a\\b", "printable ASCII characters (no spaces or backslashes)"),
        ("https://" + "a" * 2040 + ".com/", "at most 2048"),
        ("https://user:pw@hooks.example.com/", "must not carry credentials before the host (user:password@)"),
        ("ftp://hooks.example.com/", "must be an https:// URL with a host"),
        ("https:///x", "must be an https:// URL with a host"),
        (
            "http://hooks.example.com/",
            "must use https:// (plain http:// only for hosts the operator lists in alert_webhook_allowed_hosts)",
        ),
        ("https://10.0.0.1/", "points at 10.0.0.1, a loopback, private, link-local or otherwise non-public address"),
        ("https://a_b..c/", "is not a valid DNS name (use the punycode form for international names)"),
        ("https://localhost/", "must not point at localhost; use a public receiver"),
        ("https://api.localhost/", "must not point at localhost"),
        ("https://LOCALHOST./", "must not point at localhost"),
        # Cloud metadata services and private names, refused at save time whatever they resolve to here.
        ("https://metadata.google.internal/", "names a cloud metadata service"),
        ("https://Metadata.Google.Internal./", "names a cloud metadata service"),
        ("https://instance-data/latest/", "names a cloud metadata service"),
        ("https://alerts.corp.internal/", "names a cloud metadata service or a private network"),
        ("https://alerting.monitoring.svc.cluster.local/", "or a private network"),
    ],
)
def test_refusals_say_why(url, message):
    with pytest.raises(WebhookRefused) as refused:
        GUARD.target(url)
    assert message in str(refused.value)


def test_the_length_limit_is_inclusive():
    url = "https://hooks.example.com/" + "a" * (2048 - len("https://hooks.example.com/"))
    assert len(url) == 2048 and GUARD.target(url).host == "hooks.example.com"


def test_nat64_embeds_the_ipv4_address():
    assert is_public(ipaddress.ip_address("64:ff9b::808:808"))  # 8.8.8.8
    assert not is_public(ipaddress.ip_address("64:ff9b::a00:1"))  # 10.0.0.1


def test_save_time_check_skips_resolution_for_operator_and_literal_hosts():
    assert asyncio.run(GUARD.check_url("http://127.0.0.7:1/x")).operator_allowed
    assert asyncio.run(GUARD.check_url("https://8.8.8.8/x")).host == "8.8.8.8"
    name = _name_of_loopback()
    with pytest.raises(WebhookRefused) as refused:
        asyncio.run(GUARD.check_url(f"https://{name}:8443/hook"))
    assert f"webhook host {name!r} resolves to 127.0.0.1" in str(refused.value)


def test_resolver_passes_public_and_operator_names():
    async def go():
        operator = WebhookGuard.from_setting(_name_of_loopback()).resolver()
        try:
            [result, *_] = await operator.resolve(_name_of_loopback(), 443)
            assert result["host"] == "127.0.0.1" and result["port"] == 443
        finally:
            await operator.close()
        refused = GUARD.resolver()
        try:
            with pytest.raises(AddressRefused, match=f"webhook host '{_name_of_loopback()}' resolves to 127.0.0.1"):
                await refused.resolve(_name_of_loopback().upper(), 443)
        finally:
            await refused.close()

    asyncio.run(go())


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "https://user:pw@hooks.example.com/",
            "webhook_url must not carry credentials before the host (user:password@)",
        ),
        ("ftp://hooks.example.com/", "webhook_url must be an https:// URL with a host"),
        ("https://localhost/", "webhook_url must not point at localhost; use a public receiver"),
        ("https://hooks.example.com:99999/", "webhook_url is not a valid URL: Port out of range 0-65535"),
        (
            "https://10.0.0.1/",
            "webhook_url points at 10.0.0.1, a loopback, private, link-local or otherwise non-public "
            "address; use a public receiver (or ask the operator to allow the host in "
            "alert_webhook_allowed_hosts)",
        ),
    ],
)
def test_refusal_messages_exactly(url, message):
    with pytest.raises(WebhookRefused) as refused:
        GUARD.target(url)
    assert str(refused.value) == message


def test_literal_addresses_with_trailing_dots():
    assert literal_address("::1.") == ipaddress.ip_address("::1")
    assert literal_address("127.0.0.1.") == ipaddress.ip_address("127.0.0.1")
    assert WebhookGuard.from_setting("Dotted.Corp.").allowed_hosts == frozenset({"dotted.corp"})


def test_operator_names_are_not_resolved_at_save_time_and_ports_count_at_delivery():
    name = _name_of_loopback()
    assert asyncio.run(WebhookGuard.from_setting(name).check_url(f"http://{name}/x")).operator_allowed
    full = (
        f"webhook host {name!r} resolves to 127.0.0.1, a non-public address; use a public receiver (or ask the "
        "operator to allow the host)"
    )
    with pytest.raises(WebhookRefused) as refused:
        asyncio.run(GUARD.check_url(f"https://{name}/x"))
    assert str(refused.value) == full

    async def go():
        resolver = WebhookGuard.from_setting(f"{name}:443").resolver()
        try:
            assert (await resolver.resolve(name, 443))[0]["host"] == "127.0.0.1"
            with pytest.raises(AddressRefused):
                await resolver.resolve(name, 8443)  # allowed on 443 only
        finally:
            await resolver.close()

    asyncio.run(go())


class _FakeDns:
    """Stands in for the system resolver: public for hooks.example.com, private for the rest."""

    def __init__(self):
        self.asked = []

    async def resolve(self, host, port, family):
        self.asked.append((host, port, family))
        address = "93.184.216.34" if host.lower().rstrip(".") == "hooks.example.com" else "10.1.2.3"
        return [{"hostname": host, "host": address, "port": port, "family": family, "proto": 0, "flags": 0}]

    async def close(self):
        pass


def test_resolver_asks_for_the_name_as_given_and_normalises_it_for_the_operator_list():
    import socket

    async def go():
        resolver = WebhookGuard.from_setting("internal.corp").resolver()
        resolver._inner = fake = _FakeDns()
        [public] = await resolver.resolve("Hooks.Example.COM.", 443, socket.AF_INET6)
        assert public["host"] == "93.184.216.34"
        assert fake.asked == [("Hooks.Example.COM.", 443, socket.AF_INET6)]
        assert (await resolver.resolve("Internal.Corp.", 443))[0]["host"] == "10.1.2.3"  # the operator's own
        with pytest.raises(AddressRefused, match="'other.corp' resolves to 10.1.2.3"):
            await resolver.resolve("other.corp", 443)

    asyncio.run(go())
