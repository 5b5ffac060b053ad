"""Claim the listen ports before serving: refuse a port another process holds, let the kernel
pick the port of a `HOST:0` address, and say which ports were bound.

Every listener of authz sets SO_REUSEPORT so that `--workers N` share the service ports. The
same option would let a second `authz serve` (or any SO_REUSEPORT socket of the same user)
bind a port already in use and silently split its connections. So the serving process (the
single worker, or the supervisor) first binds each address as a plain socket, which fails
while anything else holds the port, then marks that socket SO_REUSEPORT and keeps it bound,
never listening, for its whole life: its own listeners join it, nobody else's plain bind
succeeds, and no connection is ever queued on it (only listening sockets receive them).
SO_REUSEADDR is set as servers set it, so a restart is not refused by its own connections
left in TIME_WAIT; on Linux it never lets a bind through while another socket listens.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path


class PortInUse(OSError):
    def __init__(self, message: str, holder: str | None):
        super().__init__(message)
        self.holder = holder  # "pid 123 (redis-server)", when /proc tells


def write_whole(path: str | Path, text: str) -> None:
    """Write a file a reader may poll for: whole or not at all (a rename)."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text)
    os.replace(partial, target)


@dataclass
class Claims:
    """The bound addresses by setting, and the sockets that hold them (keep this alive)."""

    addresses: dict[str, str]
    sockets: list[socket.socket]

    def write(self, path: str) -> None:
        """The ports file: the bound address of each listen setting, written whole."""
        write_whole(path, json.dumps(self.addresses) + "\n")

    def release(self) -> None:
        for sock in self.sockets:
            sock.close()


def split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def claim(listens: dict[str, str]) -> Claims:
    """Bind every listen address (setting -> HOST:PORT); PortInUse names the setting and holder."""
    claims = Claims({}, [])
    try:
        for key, address in listens.items():
            host, port = split(address)
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            # As every server sets it: a restart binds past its old connections in TIME_WAIT,
            # while a port another process listens on is still refused (Linux).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                sock.close()
                holder = holder_of(port)
                raise PortInUse(
                    f"setting {key!r} = {address!r}: cannot listen there ({exc.strerror})"
                    + (f"; held by {holder}" if holder else "")
                    + f": stop that process or set {key} (AUTHZ_{key.upper()}) to a free port",
                    holder,
                ) from None
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            claims.sockets.append(sock)
            bound = sock.getsockname()[1]
            claims.addresses[key] = f"[{host}]:{bound}" if family == socket.AF_INET6 else f"{host}:{bound}"
    except BaseException:
        claims.release()
        raise
    return claims


def holder_of(port: int) -> str | None:
    """`pid 123 (redis-server)` for the process listening on a TCP port, when /proc tells."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and int(fields[1].rpartition(":")[2], 16) == port and fields[3] == "0A":
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                name = Path(f"/proc/{pid}/comm").read_text().strip()
                return f"pid {pid} ({name})"
        except OSError:
            continue
    return "another process"
