"""A pod's network for a test: a network namespace joined to this one by a veth pair, its
egress filtered by the rules a rendered NetworkPolicy gives (nftables, as a CNI enforces them).

Addresses are the namespace's own (10.213.<n>.0/24, on the veth pair this test creates and
removes): traffic never leaves this machine. The namespace's /etc/hosts (ip netns exec binds
/etc/netns/<name>/hosts) names the Services the pod resolves, as cluster DNS would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def available() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)} (make test installs nftables)" if missing else None


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)


@dataclass(frozen=True)
class Pod:
    name: str  # the namespace
    address: str  # the pod's address
    host: str  # this namespace's end of the link (the node: where the Services answer)
    extra: str  # one more address on the node's end (a provider's, say)

    def exec(self, *args: str, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *args], capture_output=True, text=True, timeout=timeout, **kw
        )

    def popen_args(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]


@contextlib.contextmanager
def pod(hosts: Mapping[str, str] | None = None, index: int = 0) -> Iterator[Pod]:
    """A namespace with a veth link to this one; `hosts` maps Service names to addresses.
    `index` (0 or 1) tells two pods of one test apart."""
    n = os.getpid() % 100 * 2 + 20 + index
    name, outside, inside = f"authzpod{n}", f"apod{n}a", f"apod{n}b"
    net = f"10.213.{n}"
    found = Pod(name, f"{net}.2", f"{net}.1", f"{net}.101")
    etc = Path("/etc/netns") / name
    with contextlib.suppress(subprocess.CalledProcessError):
        _run("ip", "netns", "del", name)  # left by a killed run
    with contextlib.suppress(subprocess.CalledProcessError):
        _run("ip", "link", "del", outside)
    try:
        _run("ip", "netns", "add", name)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        _run("ip", "link", "set", inside, "netns", name)
        _run("ip", "addr", "add", f"{found.host}/24", "dev", outside)
        _run("ip", "addr", "add", f"{found.extra}/32", "dev", outside)
        _run("ip", "link", "set", outside, "up")
        _run("ip", "netns", "exec", name, "ip", "addr", "add", f"{found.address}/24", "dev", inside)
        _run("ip", "netns", "exec", name, "ip", "link", "set", inside, "up")
        _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        _run("ip", "netns", "exec", name, "ip", "route", "add", "default", "via", found.host)
        etc.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", *(f"{address} {service}" for service, address in (hosts or {}).items())]
        (etc / "hosts").write_text("\n".join(lines) + "\n")
        yield found
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _run("ip", "netns", "del", name)
        with contextlib.suppress(subprocess.CalledProcessError):
            _run("ip", "link", "del", outside)
        shutil.rmtree(etc, ignore_errors=True)


def egress_rules(policy: Mapping[str, Any], peers: Mapping[tuple[tuple[str, str], ...], str]) -> str:
    """An nftables ruleset for a pod's output, from a NetworkPolicy's egress rules: a peer
    (podSelector, or namespaceSelector with podSelector) is the address `peers` gives its
    labels; a peer no pod matches admits nothing; ports as listed (none: every port). Anything
    else is refused (reset, so a test does not wait for a timeout), as the policy denies it."""
    accept: list[str] = ['oifname "lo" accept', "ct state established,related accept"]
    for rule in policy["spec"].get("egress", []):
        addresses = []
        for peer in rule.get("to", []):
            if "ipBlock" in peer:
                raise ValueError("an ipBlock peer: this test pod admits named pods only")
            labels = tuple(sorted((peer.get("podSelector") or {}).get("matchLabels", {}).items()))
            if labels in peers:
                addresses.append(peers[labels])
        for address in addresses:
            ports = rule.get("ports") or [{}]
            for port in ports:
                protocol = port.get("protocol", "TCP").lower()
                match = f"{protocol} dport {port['port']} " if "port" in port else ""
                accept.append(f"ip daddr {address} {match}accept")
    body = "\n    ".join([*accept, "meta l4proto tcp reject with tcp reset", "reject"])
    return (
        "table inet netpol {\n  chain output {\n    type filter hook output priority 0; policy drop;\n"
        f"    {body}\n  }}\n}}\n"
    )


def apply_rules(target: Pod, ruleset: str, workdir: Path) -> None:
    path = workdir / "netpol.nft"
    path.write_text(ruleset)
    done = target.exec("nft", "-f", str(path))
    if done.returncode != 0:
        raise RuntimeError(f"nft refused the ruleset: {done.stderr}\n{ruleset}")
