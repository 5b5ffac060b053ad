"""The webhook guard, alone: every spelling of a non-public address is refused, public https
passes, and the operator's own hosts are the only exception."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import given, strategies as st

from authz.webhooks import AddressRefused, WebhookGuard, WebhookRefused, is_public, literal_address

GUARD = WebhookGuard.from_setting("alerts.internal:8443, 127.0.0.7")


def _non_public_v4() -> st.SearchStrategy[ipaddress.IPv4Address]:
    nets = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                               "169.254.0.0/16", "100.64.0.0/10", "0.0.0.0/8")]
    return st.sampled_from(nets).flatmap(
        lambda n: st.integers(0, n.num_addresses - 1).map(lambda i: n.network_address + i))


def _spellings(ip: ipaddress.IPv4Address) -> list[str]:
    n = int(ip)
    octets = str(ip).split(".")
    return [str(ip), f"{ip}.", str(n), hex(n), ".".join("0" + oct(int(o))[2:] for o in octets),
            f"{octets[0]}.{(n & 0xFFFFFF)}", f"[::ffff:{ip}]", f"[64:ff9b::{ip}]"]


@given(_non_public_v4())
def test_every_spelling_of_a_non_public_ipv4_address_is_refused(ip):
    for host in _spellings(ip):
        with pytest.raises(WebhookRefused):
            GUARD.target(f"https://{host}/hook")


@pytest.mark.parametrize("text", ["::1", "::", "fe80::1", "fd00:ec2::254", "ff02::1", "::ffff:10.0.0.1",
                                  "2002:a00:1::", "2001::1", "64:ff9b::a9fe:a9fe"])
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


@pytest.mark.parametrize("url", ["https://hooks.slack.com/services/T0/B0/x",
                                 "https://discord.com/api/webhooks/1/abc", "https://8.8.8.8/hook"])
def test_public_https_urls_pass(url):
    assert not GUARD.target(url).operator_allowed


def test_operator_hosts_may_use_http_and_private_addresses():
    assert GUARD.target("http://alerts.internal:8443/hook").operator_allowed
    assert GUARD.target("http://127.0.0.7:9999/hook").operator_allowed
    with pytest.raises(WebhookRefused, match="https"):
        GUARD.target("http://alerts.internal:8080/hook")  # allowed on 8443 only
    with pytest.raises(WebhookRefused):
        GUARD.target("http://127.0.0.1:9999/hook")


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/", "https:///x", "https://user@hooks.example.com/",
                                 "https://exa mple.com/", "https://bücher.example/", "https://a_b..c/",
                                 "https://hooks.example.com:99999/", "https://" + "a" * 3000 + ".com/"])
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
