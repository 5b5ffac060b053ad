"""Start the real stack on free loopback ports: redis-server, the stand-in gateway, authz and
Envoy (running envoy/front-proxy.yaml). Used by the end-to-end tests, the demo and the
benchmark, so each of them is a few lines.

    with Stack.start(tmpdir) as stack:
        stack.admin.set_policy("acme", {...})
        httpx.post(stack.url + "/v1/chat/completions", ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis

from authz.admin.tokens import issue
from authz.config import Settings
from authz.config import load as load_settings
from authz.policy import catalog as catalog_mod
from authz.server.ports import claim
from authz.state.layout import Keys
from authz.state.store import Store
from authz.v1 import policy_pb2
from devstack.envoy_config import cluster, envoy_binary, render

ROOT = Path(__file__).resolve().parents[2]
# The stack's admin-token secret: for local test stacks only.
ADMIN_SECRET = "test-stack-admin-secret-not-for-production-use"
FRONT_PROXY = ROOT / "envoy" / "front-proxy.yaml"
FRONT_PROXY_HTTP = ROOT / "envoy" / "front-proxy-http.yaml"  # the Check over HTTP (transport="http")
TRANSPORTS = ("grpc", "http")
SAMPLE_CATALOG = ROOT / "catalog" / "sample-catalog.json"


# The Azure OpenAI deployments of the demo and the tests: each runs a model on Azure.
DEPLOYMENTS = {"gpt-4o-prod": "azure/gpt-4o", "deepseek-batch": "deepseek/deepseek-v3.2"}


T = TypeVar("T")


_HANDED_OUT: set[int] = set()
_HELD: list[Any] = []  # sockets and port claims kept for the life of this process


def free_port() -> int:
    """A port that was free a moment ago, for the servers that cannot bind port 0 and say which
    port they got (redis-server, Redis Sentinel, LiteLLM's proxy). Another process may take it
    before they bind it: they then fail to start, loudly (RedisServer tries another port).
    Everything else binds port 0 (listening_socket, claimed_settings, the ports files).
    Never the same port twice in this process: the kernel may offer one port to two bind(0)
    calls in a row."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def closed_port(host: str = "127.0.0.1") -> int:
    """A port where nothing listens and nothing can start listening while this process runs
    (bound, never listening): connections to it are refused."""
    sock = socket.socket()
    sock.bind((host, 0))
    _HELD.append(sock)
    port: int = sock.getsockname()[1]
    return port


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on a port the kernel picked, for an in-process server (SockSite)."""
    return socket.create_server((host, 0))


def claimed_settings(env: dict[str, str]) -> Settings:
    """authz settings from `env` with every listen address on a port the kernel picked, claimed
    as `authz serve` claims them (so an in-process App binds exactly those)."""
    settings = load_settings(None, {**{f"AUTHZ_{key.upper()}": "127.0.0.1:0" for key in AUTHZ_LISTEN}, **env})
    claims = claim(settings.listens())
    _HELD.append(claims)
    return settings.bound_to(claims.addresses)


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout}s" + (f" (last error: {last})" if last else ""))


@dataclass
class Proc:
    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] | None = None  # None: inherit ours
    popen: subprocess.Popen[bytes] | None = None
    cwd: Path | None = None  # None: ours

    def start(self) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps its own copy
        self.popen = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True, cwd=self.cwd
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check_alive(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited; log:\n{self.log()[-4000:]}")
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        if self.popen is not None and self.alive():
            self.popen.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.popen is None:
            return None
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


def real_clock_env() -> dict[str, str]:
    """Our environment without libfaketime: tests may run under a shifted clock (`faketime`),
    which redis-server's allocator cannot start with; Redis and Envoy keep the real clock."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FAKETIME")}


class RedisServer:
    """A private redis-server (never the machine's 6379). Redis cannot bind a port the kernel
    picks (`--port 0` turns TCP off), so a port is picked first; if another process takes it
    in between, this server exits and start() tries another port. It never adopts a Redis it did
    not start: the server answering must report this process's pid."""

    def __init__(self, workdir: Path, port: int | None = None, extra: list[str] | None = None, password: str = ""):
        self.fixed = port is not None
        self.port = port or free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.extra = [*(extra or []), *(["--requirepass", password] if password else [])]
        binary = shutil.which("redis-server")
        if not binary:
            raise FileNotFoundError("redis-server is not installed (make test installs it with apt)")
        self.binary = binary
        self.proc = self._proc()

    def _proc(self) -> Proc:
        return Proc(
            "redis",
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *self.extra,
            ],
            self.workdir / f"redis-{self.port}.log",
            env=real_clock_env(),
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, password=self.password or None)

    def _ours(self) -> bool:
        self.proc.check_alive()
        assert self.proc.popen is not None
        return int(self.client().info("server")["process_id"]) == self.proc.popen.pid

    def start(self) -> RedisServer:
        for attempt in range(5):
            if attempt:
                self.port = free_port()
                self.proc = self._proc()
            self.proc.start()
            try:
                wait_until(self._ours, 10, f"redis-server on :{self.port}")
                return self
            except (RuntimeError, TimeoutError):
                self.proc.stop()
                if self.fixed or "Address already in use" not in self.proc.log():
                    raise RuntimeError(
                        f"redis-server on :{self.port} did not start:\n{self.proc.log()[-2000:]}"
                    ) from None
        raise RuntimeError("redis-server: five picked ports were each taken before it could bind them")

    def stop(self) -> None:
        self.proc.stop()


class Admin:
    """Synchronous helpers over Store for tests and the demo (each call its own event loop)."""

    def __init__(self, redis_url: str, prefix: str = "authz:", cluster: bool = False):
        self.redis_url = redis_url
        self.keys = Keys(prefix)
        self.cluster = cluster

    def _run(self, op: Callable[[Store], Awaitable[T]]) -> T:
        async def go() -> T:
            import redis.asyncio as aioredis
            from redis.asyncio.cluster import RedisCluster

            client = (RedisCluster if self.cluster else aioredis.Redis).from_url(self.redis_url)
            try:
                return await op(Store(client, self.keys))
            finally:
                await client.aclose()

        return asyncio.run(go())

    def load_catalog(self, path_or_json: Path | str | dict[str, Any] = SAMPLE_CATALOG, actor: str = "test") -> int:
        if isinstance(path_or_json, dict):
            text = json.dumps(path_or_json)
        else:
            text = Path(path_or_json).read_text()
        from authz.admin.catalog_loading import load_catalog

        return self._run(lambda s: load_catalog(s, catalog_mod.parse(text), actor))

    def set_plan(self, org_id: str, plan: str, actor: str = "test") -> None:
        self._run(lambda s: s.set_plan(org_id, plan, actor))

    def set_policy(self, org_id: str, actor: str = "test", **fields: Any) -> policy_pb2.CompliancePolicy:
        return self._run(lambda s: s.set_policy(org_id, policy_pb2.CompliancePolicy(**fields), actor))

    def add_api_key(self, key: str, org_id: str, actor: str = "test") -> str:
        return self._run(lambda s: s.add_api_key(key, org_id, actor))

    def revoke_api_key(self, key_hash: str, actor: str = "test") -> bool:
        return self._run(lambda s: s.revoke_api_key(key_hash, actor))

    def security_events(self) -> list[dict[str, Any]]:
        client: Any = (redis.RedisCluster if self.cluster else redis.Redis).from_url(self.redis_url)
        try:
            entries = client.xrange(self.keys.security_events)
        finally:
            client.close()
        return [json.loads(fields[b"event"]) for _, fields in entries]


# authz's listen settings and the Stack.ports name of each.
AUTHZ_LISTEN = {
    "grpc_listen": "authz_grpc",
    "http_listen": "authz_http",
    "admin_grpc_listen": "authz_admin_grpc",
    "metrics_listen": "authz_metrics",
}


def _reported(proc: Proc, path: Path, timeout: float = 20) -> str:
    """What a process wrote to its ports file once its ports were bound. Envoy writes its
    admin address in place (not by rename), so an empty file means "not yet"."""

    def written() -> str:
        proc.check_alive()
        return path.read_text().strip() if path.exists() else ""

    wait_until(written, timeout, f"{proc.name}'s ports ({path.name})")
    return written()


def first_listener_port(envoy_admin: str) -> int:
    """The port Envoy's first listener bound (a config's port_value 0: the kernel's pick)."""
    statuses = httpx.get(envoy_admin + "/listeners?format=json").json()["listener_statuses"]
    return int(statuses[0]["local_address"]["socket_address"]["port_value"])


def start_envoy(config: str, workdir: Path, name: str = "envoy", env: dict[str, str] | None = None) -> tuple[Proc, str]:
    """Envoy on `config` (rendered), once ready; returns the process and its admin URL. `env`
    adds variables (an egress Envoy's AWS credentials, say)."""
    admin_address = workdir / f"{name}-admin.address"
    admin_address.unlink(missing_ok=True)
    envoy = Proc(
        name,
        # Access log lines reach the log within 100 ms (the default flush interval is 10 s).
        [
            envoy_binary(),
            "-c",
            config,
            "--concurrency",
            "2",
            "--disable-hot-restart",
            "--log-level",
            "warning",
            "--file-flush-interval-msec",
            "100",
            "--admin-address-path",
            str(admin_address),
        ],
        workdir / f"{name}.log",
        env={**real_clock_env(), **(env or {})},
    )
    envoy.start()
    admin = "http://" + _reported(envoy, admin_address)
    wait_until(lambda: envoy.check_alive() and httpx.get(admin + "/ready").is_success, 20, name)
    return envoy, admin


@dataclass
class Stack:
    workdir: Path
    redis: RedisServer
    ports: dict[str, int]
    gateway: Proc
    authz: Proc
    envoy: Proc
    authz_env: dict[str, str] = field(default_factory=dict)  # before the ports were bound
    replicas: list[Proc] = field(default_factory=list)  # every authz process; replicas[0] is authz
    workers: int = 1  # worker processes of each authz (they share its ports)
    envoy_config: str = ""  # the rendered Envoy config file
    transport: str = "grpc"  # how Envoy asks authz: "grpc" or "http" (Envoy's HTTP ext_authz)

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        authz_settings: dict[str, str] | None = None,
        envoy_overrides: dict[str, Any] | None = None,
        envoy_config: Path | None = None,
        transport: str = "grpc",
        workers: int = 1,
        replicas: int = 1,
        redis_server: RedisServer | None = None,
        gateway_args: list[str] | None = None,
        upstream_port: int | None = None,
        envoy_mutate: Callable[[dict[str, Any]], None] | None = None,
        ports: dict[str, int] | None = None,
    ) -> Stack:
        """`replicas` > 1 starts more authz processes (own ports, same Redis) behind Envoy's authz
        cluster; `redis_server` uses a running Redis (e.g. the master of a Sentinel set-up);
        `gateway_args` are extra stand-in gateway options; `upstream_port` sends Envoy's traffic
        to another gateway (e.g. a LiteLLM proxy); `envoy_mutate(config)` edits Envoy's config;
        `transport` "http" serves the Check over Envoy's HTTP ext_authz (front-proxy-http.yaml)."""
        assert transport in TRANSPORTS, transport
        envoy_config = envoy_config or (FRONT_PROXY_HTTP if transport == "http" else FRONT_PROXY)
        listens = {**AUTHZ_LISTEN, **({"ext_authz_http_listen": "authz_ext_authz_http"} if transport == "http" else {})}
        check_listen = "ext_authz_http_listen" if transport == "http" else "grpc_listen"
        workdir.mkdir(parents=True, exist_ok=True)
        # `make run` passes the ports it was given; everything else binds port 0 and reports the
        # port the kernel picked (no pick-then-bind race, no clash with a stack running beside).
        fixed = ports or {}
        redis_server = redis_server or RedisServer(workdir).start()
        # Azure deployments: the gateway and authz's endpoint table map them the same way.
        endpoints_file = workdir / "endpoints.toml"
        endpoints_file.write_text("[deployments]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in DEPLOYMENTS.items()))
        gateway = Proc(
            "gateway",
            [
                sys.executable,
                "-m",
                "devstack.standin_gateway",
                "--port",
                str(fixed.get("gateway", 0)),
                "--port-file",
                str(workdir / "gateway.port"),
                *[f"--deployment={k}={v}" for k, v in DEPLOYMENTS.items()],
                *(gateway_args or []),
            ],
            workdir / "gateway.log",
        )
        env = dict(os.environ)
        env.update(
            {
                "AUTHZ_REDIS_URL": redis_server.url,
                "AUTHZ_ADMIN_JWT_HS256_SECRET": ADMIN_SECRET,
                "AUTHZ_EVENTS_SPOOL_DIR": str(workdir / "spool"),
                "AUTHZ_DRAIN_DELAY_S": "0",  # tests that drain set it themselves
                "AUTHZ_ENDPOINTS_FILE": str(endpoints_file),
            }
        )
        for key, name in listens.items():
            env[f"AUTHZ_{key.upper()}"] = f"127.0.0.1:{fixed.get(name, 0)}"
        env.update({f"AUTHZ_{k.upper()}": str(v) for k, v in (authz_settings or {}).items()})
        authz = Proc(
            "authz", [sys.executable, "-m", "authz", "serve", "--workers", str(workers)], workdir / "authz.log", env=env
        )
        more = []
        for i in range(1, replicas):
            replica_env = dict(env)
            for key in listens:
                replica_env[f"AUTHZ_{key.upper()}"] = "127.0.0.1:0"
            more.append(Proc(f"authz-{i}", list(authz.args), workdir / f"authz-{i}.log", env=replica_env))
        for proc in (authz, *more):
            assert proc.env is not None
            proc.env["AUTHZ_PORTS_FILE"] = str(workdir / f"{proc.name}.ports")
        stack = cls(workdir, redis_server, {}, gateway, authz, Proc("envoy", [], workdir / "envoy.log"), env)
        stack.replicas = [authz, *more]
        stack.workers = workers
        stack.transport = transport
        for reported in (workdir / "gateway.port", *(workdir / f"{p.name}.ports" for p in stack.replicas)):
            reported.unlink(missing_ok=True)  # a file left by an earlier run in this directory
        try:
            gateway.start()
            for proc in stack.replicas:
                proc.start()
            stack.ports["gateway"] = int(_reported(gateway, workdir / "gateway.port"))
            for proc in stack.replicas:
                bound = json.loads(_reported(proc, workdir / f"{proc.name}.ports"))
                assert proc.env is not None
                for key in listens:  # a restart binds the same ports again
                    proc.env[f"AUTHZ_{key.upper()}"] = bound[key]
                if proc is authz:
                    stack.ports.update({name: int(bound[key].rpartition(":")[2]) for key, name in listens.items()})

            def add_replicas(config: dict[str, Any]) -> None:
                if envoy_mutate:
                    envoy_mutate(config)
                endpoints = cluster(config, "authz")["load_assignment"]["endpoints"][0]["lb_endpoints"]
                for proc in more:
                    port = int((proc.env or {})[f"AUTHZ_{check_listen.upper()}"].rpartition(":")[2])
                    endpoints.append(
                        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
                    )

            config = render(
                envoy_config,
                {
                    8080: fixed.get("envoy", 0),
                    9901: fixed.get("envoy_admin", 0),
                    9001: stack.ports["authz_grpc"],
                    9003: stack.ports.get("authz_ext_authz_http", 9003),
                    8000: upstream_port or stack.ports["gateway"],
                },
                envoy_overrides,
                add_replicas,
                directory=workdir,
            )
            stack.envoy_config = config
            stack.envoy, admin = start_envoy(config, workdir)
            stack.ports["envoy_admin"] = int(admin.rpartition(":")[2])
            stack.ports["envoy"] = first_listener_port(stack.envoy_admin)
            wait_until(
                lambda: gateway.check_alive() and httpx.get(stack.gateway_url + "/_requests").is_success,
                15,
                "stand-in gateway",
            )
            wait_until(lambda: authz.check_alive() and httpx.get(stack.authz_http + "/healthz").is_success, 20, "authz")
        except BaseException:
            stack.stop()
            raise
        return stack

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['envoy']}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def authz_http(self) -> str:
        return f"http://127.0.0.1:{self.ports['authz_http']}"

    @property
    def authz_metrics(self) -> str:
        return f"http://127.0.0.1:{self.ports['authz_metrics']}"

    @property
    def envoy_admin(self) -> str:
        return f"http://127.0.0.1:{self.ports['envoy_admin']}"

    @property
    def admin(self) -> Admin:
        return Admin(
            self.redis.url,
            self.authz_env.get("AUTHZ_KEY_PREFIX", "authz:"),
            self.authz_env.get("AUTHZ_REDIS_CLUSTER") == "true",
        )

    @property
    def admin_grpc(self) -> str:
        return f"127.0.0.1:{self.ports['authz_admin_grpc']}"

    def token(self, org_id: str, role: str = "owner", subject: str = "alice@example.com", ttl_s: int = 3600) -> str:
        return issue(ADMIN_SECRET, subject=subject, org_id=org_id, role=role, ttl_s=ttl_s)

    def wait_ready(self, timeout: float = 30) -> None:
        """authz reports ready once it has synced and holds a catalog. With several workers,
        /readyz answers from whichever one takes the connection: wait for every one of them."""
        wait_until(lambda: httpx.get(self.authz_http + "/readyz").status_code == 200, timeout, "authz readiness")
        if self.workers > 1:

            def ready_workers() -> int:
                return len(
                    {json.loads(line)["pid"] for line in self.authz.log().splitlines() if '"event": "ready"' in line}
                )

            wait_until(lambda: ready_workers() >= self.workers, timeout, "every worker ready")

    def received(self) -> list[dict[str, Any]]:
        return httpx.get(self.gateway_url + "/_requests").json()

    def clear_received(self) -> None:
        httpx.delete(self.gateway_url + "/_requests")

    def reconfigure_authz(self, **settings: str) -> None:
        """Restart authz with these settings changed (e.g. routing_enforcement="strict")."""
        assert self.authz.env is not None  # authz always runs with its own environment
        self.authz.env.update({f"AUTHZ_{k.upper()}": str(v) for k, v in settings.items()})
        self.restart_authz()
        self.wait_ready()

    def restart_authz(self) -> None:
        self.authz.stop()
        self.authz.start()
        wait_until(lambda: self.authz.check_alive() and httpx.get(self.authz_http + "/healthz").is_success, 20, "authz")

    def stop(self) -> None:
        for proc in (self.envoy, *self.replicas, self.gateway):
            with contextlib.suppress(Exception):
                proc.stop()
        self.redis.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
