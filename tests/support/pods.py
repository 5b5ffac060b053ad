"""A rendered workload's pod started on this machine as the kubelet would start it.

Each container runs with the rendered command and args (`$(VAR)` expanded as the kubelet does),
the environment its `env` and `envFrom` give (ConfigMaps from the render, Secrets from the
test), and its volumes mounted at the rendered paths: every process runs in the pod's network
namespace (support.netns) and a mount namespace of its own (`ip netns exec` makes one) where
each ConfigMap, Secret, emptyDir or claim is a directory bind-mounted at its mountPath. Only the
image's entrypoint is this machine's: `entrypoint` names the binary that stands in for each image.
Services resolve, as cluster DNS and kube-proxy would have them, to a ClusterIP the pod's
/etc/hosts names and its nftables NAT table sends to where the Service's pods listen.

Not reproduced: the user a securityContext names (the venv's interpreter lives under /root,
which only root may enter; tests/image runs the image as uid 10001) and a read-only root.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shlex
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.envoy_config import envoy_binary
from devstack.stack import Proc, real_clock_env
from support.netns import Pod as Namespace

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PORTKEY = ROOT / "tools" / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"


def entrypoint(image: str) -> list[str]:
    """What stands in for an image's ENTRYPOINT here (its CMD is the container's args)."""
    repository = image.split("@", 1)[0].rsplit(":", 1)[0]
    local = {
        "ghcr.io/provider-compliance/authz": [str(VENV_BIN / "authz")],  # ENTRYPOINT ["authz"]
        "envoyproxy/envoy": [envoy_binary()],  # ENTRYPOINT ["/usr/local/bin/envoy"]
        "portkeyai/gateway": ["node", str(PORTKEY)],  # npm run start:node
    }
    if repository not in local:
        raise KeyError(f"no local stand-in for the image {image}")
    return local[repository]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def _configmap(docs: list[dict[str, Any]], name: str) -> dict[str, str]:
    return dict(find(docs, "ConfigMap", name).get("data", {}))


def _expand(text: str, env: Mapping[str, str]) -> str:
    """$(VAR) as the kubelet expands it; $$(VAR) stays literal; an unknown $(VAR) is left as is."""
    return re.sub(r"\$\$|\$\((\w+)\)", lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


@dataclass
class Container:
    name: str
    image: str
    command: list[str] | None  # the image's entrypoint when None
    args: list[str]
    env: dict[str, str]
    mounts: dict[str, Path] = field(default_factory=dict)  # mountPath -> this machine's directory

    @property
    def argv(self) -> list[str]:
        """What the kubelet runs, $(VAR) expanded (the image's entrypoint only when started)."""
        return [_expand(a, self.env) for a in [*(self.command or entrypoint(self.image)), *self.args]]


class _Placeholders(Mapping[str, str]):
    """One Secret whose every key holds a placeholder long enough for any check (and which
    lists no keys, so `envFrom` and Secret volumes add nothing)."""

    def __getitem__(self, key: str) -> str:
        return "s3cret" * 8

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class AnySecrets(Mapping[str, Mapping[str, str]]):
    """Every Secret a manifest names, as placeholders: for reading a container's settings
    without the cluster's Secrets."""

    def __getitem__(self, name: str) -> Mapping[str, str]:
        return _Placeholders()

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def containers(
    docs: list[dict[str, Any]],
    kind: str,
    name: str,
    workdir: Path,
    secrets: Mapping[str, Mapping[str, str]],
    only: str | None = None,
) -> list[Container]:
    """The workload's init containers then containers (or only the one named), ready to start:
    volumes written to workdir, environment resolved as the kubelet resolves it."""
    pod = find(docs, kind, name)["spec"]["template"]["spec"]
    volumes: dict[str, Path] = {}
    for volume in pod.get("volumes", []):
        where = workdir / "volumes" / volume["name"]
        where.mkdir(parents=True, exist_ok=True)
        where.chmod(0o777)  # an emptyDir is writable by the pod's user
        if "configMap" in volume or "secret" in volume:
            ref = volume.get("configMap") or volume["secret"]
            source_name = ref.get("name") or ref.get("secretName")
            if "configMap" in volume:
                data: Mapping[str, str] = _configmap(docs, source_name)
            elif source_name in secrets:
                data = secrets[source_name]
            elif ref.get("optional"):
                data = {}  # an optional Secret that does not exist: an empty volume
            else:
                raise KeyError(f"volume {volume['name']}: Secret {source_name} is not optional; the test must give it")
            items = {i["key"]: i["path"] for i in ref.get("items", [])} or {k: k for k in data}
            for key, path in items.items():
                (where / path).parent.mkdir(parents=True, exist_ok=True)
                (where / path).write_text(data[key])
        volumes[volume["name"]] = where
    found = []
    for c in [*pod.get("initContainers", []), *pod["containers"]]:
        if only is not None and c["name"] != only:
            continue
        env: dict[str, str] = {}
        for source in c.get("envFrom", []):
            if "configMapRef" in source:
                env.update(_configmap(docs, source["configMapRef"]["name"]))
            elif source["secretRef"]["name"] in secrets:
                env.update(secrets[source["secretRef"]["name"]])
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = _expand(e["value"], env)
                continue
            ref = e["valueFrom"].get("secretKeyRef") or e["valueFrom"]["configMapKeyRef"]
            data = secrets.get(ref["name"], {}) if "secretKeyRef" in e["valueFrom"] else _configmap(docs, ref["name"])
            if ref["key"] in data:
                env[e["name"]] = data[ref["key"]]
            elif not ref.get("optional"):
                raise KeyError(f"{c['name']}: {e['name']} needs {ref['name']}/{ref['key']}")
        mounts = {m["mountPath"]: volumes[m["name"]] / m.get("subPath", "") for m in c.get("volumeMounts", [])}
        found.append(Container(c["name"], c["image"], c.get("command"), c.get("args", []), env, mounts))
    return found


class Pod:
    """Starts containers in one network namespace; removes the mount points it had to create."""

    def __init__(self, netns_pod: Namespace, workdir: Path) -> None:
        self.net = netns_pod
        self.workdir = workdir
        self.procs: list[Proc] = []
        self.created: list[Path] = []

    def _mount_points(self, container: Container) -> None:
        for path in map(Path, container.mounts):
            missing = [p for p in [path, *path.parents] if not p.exists()]
            for p in reversed(missing):
                p.mkdir()
                self.created.append(p)

    def _args(self, container: Container) -> list[str]:
        # A target that hides a source (an emptyDir on /tmp, where the test's directories are)
        # is mounted last.
        sources = [str(s) for s in container.mounts.values()]
        order = sorted(
            container.mounts.items(), key=lambda m: (any(s.startswith(m[0].rstrip("/") + "/") for s in sources), m[0])
        )
        binds = "".join(f"mount --bind {shlex.quote(str(source))} {shlex.quote(target)}; " for target, source in order)
        # A target that hides this checkout (one cloned under /tmp): the stand-in binaries live
        # there, so it is kept aside first and put back on top.
        if any(str(ROOT).startswith(t.rstrip("/") + "/") for t in container.mounts):
            stash = shlex.quote(str(self._stash()))
            here = shlex.quote(str(ROOT))
            binds = f"mount --bind {here} {stash}; {binds}mkdir -p {here}; mount --bind {stash} {here}; "
        script = f'set -e; {binds}exec "$@"'
        return self.net.popen_args("sh", "-c", script, container.name, *container.argv)

    def _stash(self) -> Path:
        stash = Path("/run") / f"authz-pod-{os.getpid()}"
        if not stash.exists():
            stash.mkdir()
            self.created.append(stash)
        return stash

    def _env(self, container: Container) -> dict[str, str]:
        base = {k: v for k, v in real_clock_env().items() if k in ("PATH", "LANG", "HOME")}
        base["PATH"] = f"{VENV_BIN}:{base.get('PATH', '/usr/bin:/bin')}"
        return {**base, **container.env}

    def start(self, container: Container) -> Proc:
        self._mount_points(container)
        proc = Proc(
            container.name, self._args(container), self.workdir / f"{container.name}.log", env=self._env(container)
        )
        self.procs.append(proc.start())
        return proc

    def run(self, container: Container, timeout: float = 120) -> tuple[int, str]:
        """A container run to completion (a Job's): its exit code and output."""
        proc = self.start(container)
        assert proc.popen is not None
        code = proc.popen.wait(timeout)
        self.procs.remove(proc)
        return code, proc.log()

    def check_alive(self) -> None:
        for proc in self.procs:
            proc.check_alive()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        for path in reversed(self.created):
            with contextlib.suppress(OSError):
                path.rmdir()


def service_nat(services: Mapping[str, tuple[str, int, str, int]]) -> str:
    """kube-proxy's part: each Service (name -> ClusterIP, port, endpoint address, port) as a
    DNAT rule in the pod's own output path."""
    rules = "\n    ".join(
        f"ip daddr {ip} tcp dport {port} dnat to {to}:{to_port}" for ip, port, to, to_port in services.values()
    )
    return (
        "table ip services {\n  chain output {\n    type nat hook output priority -100; policy accept;\n"
        f"    {rules}\n  }}\n}}\n"
    )


@contextlib.contextmanager
def relay(listen: str, target: tuple[str, int]) -> Iterator[int]:
    """A TCP relay on this namespace's `listen` address to `target` (a pod address this namespace
    reaches over its link): the node forwarding a Service's traffic to another pod, as kube-proxy
    in userspace mode does, without turning on IP forwarding for the whole machine."""
    server = socket.create_server((listen, 0))
    server.setblocking(False)
    stop = threading.Event()

    def pump() -> None:
        sel = selectors.DefaultSelector()
        sel.register(server, selectors.EVENT_READ)
        peers: dict[socket.socket, socket.socket] = {}
        while not stop.is_set():
            for key, _ in sel.select(0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is server:
                    client, _ = server.accept()
                    try:
                        upstream = socket.create_connection(target, timeout=5)
                    except OSError:
                        client.close()
                        continue
                    for a, b in ((client, upstream), (upstream, client)):
                        a.setblocking(False)
                        peers[a] = b
                        sel.register(a, selectors.EVENT_READ)
                    continue
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                other = peers.get(sock)
                if data and other is not None:
                    try:
                        other.setblocking(True)
                        other.sendall(data)
                        other.setblocking(False)
                        continue
                    except OSError:
                        pass
                for s in (sock, other):
                    if s is not None and s in peers:
                        sel.unregister(s)
                        peers.pop(s)
                        s.close()
        for s in list(peers):
            s.close()
        sel.close()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()
