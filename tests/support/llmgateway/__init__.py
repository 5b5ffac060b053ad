"""LLMGateway's own gateway, from the source snapshot in ../shared/upstream, for tests.

build() unpacks the snapshot, installs its Node toolchain (the versions its .tool-versions
names, from npm) and its dependencies (`pnpm install --frozen-lockfile`), and builds it
(build.mjs: a transpile-only build in place of its 4-5 minute `tsc`), once per snapshot digest
and harness version, in a cache outside the repository (AUTHZ_TEST_CACHE, default
~/.cache/authz-tests). The snapshot is AGPLv3 test input: it is run as a separate process and
never copied into this project.

running() gives a started gateway: a fresh PostgreSQL database on the machine's server
(migrated with the gateway's own runMigrations, dropped afterwards), its own Redis, and the
settings that keep it offline and deterministic (../shared/upstream/README.md says why each).
The enterprise `ee/` directory is not in the snapshot: a package of ours stands in for
`@llmgateway/guardrails` that never blocks, never redacts and logs nothing.

    python -m support.llmgateway     # build (make llmgateway-gateway), prints the tree
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from devstack.stack import Proc, RedisServer, free_port, wait_until

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
SNAPSHOT_DIRS = (ROOT.parent / "shared" / "upstream", Path("/work/shared/upstream"))
CACHE = Path(os.environ.get("AUTHZ_TEST_CACHE") or Path.home() / ".cache" / "authz-tests") / "llmgateway"
POSTGRES = ["-h", "127.0.0.1", "-U", "postgres"]  # the machine's server: trust on loopback

GUARDRAILS_PACKAGE = {
    "name": "@llmgateway/guardrails",
    "version": "0.0.0",
    "private": True,
    "type": "module",
    "exports": {".": "./index.js"},
    # what the snapshot's pnpm-lock.yaml records for ee/guardrails, so --frozen-lockfile holds
    "dependencies": {
        "@llmgateway/cache": "workspace:*",
        "@llmgateway/db": "workspace:*",
        "drizzle-orm": "1.0.0-beta.1",
    },
}
GUARDRAILS_INDEX = """// Stand-in for LLMGateway's enterprise guardrails (ee/, not in the snapshot): never blocks,
// never redacts, logs nothing.
export async function checkGuardrails() {
	return { blocked: false, violations: [], redactions: [], warnings: [] };
}
export function applyRedactions(messages) {
	return messages;
}
export async function logViolation() {}
"""
MIGRATE = """import { runMigrations } from "./dist/migrate.js";
await runMigrations();
process.exit(0);
"""


def snapshot() -> Path:
    named = os.environ.get("LLMGATEWAY_SNAPSHOT")
    found = [Path(named)] if named else [p for d in SNAPSHOT_DIRS for p in sorted(d.glob("llmgateway-*.tar.gz"))]
    if not found or not found[0].is_file():
        raise FileNotFoundError(
            f"LLMGateway's source snapshot is not in {' or '.join(map(str, SNAPSHOT_DIRS))}: "
            "set LLMGATEWAY_SNAPSHOT to its llmgateway-*.tar.gz"
        )
    return found[0]


def _harness_version() -> str:
    parts = [(HERE / "build.mjs").read_bytes(), GUARDRAILS_INDEX.encode()]
    parts.append(json.dumps(GUARDRAILS_PACKAGE, sort_keys=True).encode())
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def _tool_versions(tar: Path) -> dict[str, str]:
    with tarfile.open(tar) as archive:
        member = archive.extractfile("llmgateway/.tool-versions")
        assert member is not None
        return dict(line.split() for line in member.read().decode().splitlines() if line.strip())


def _run(args: list[str], log: Path, **kwargs: object) -> None:
    with log.open("ab") as out:
        done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, timeout=900, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(args[:3])}... failed ({done.returncode}); {log}:\n{tail}")


@dataclass(frozen=True)
class Build:
    tree: Path  # the unpacked, installed, built workspace
    node: Path
    path: str  # PATH with the toolchain first


def build() -> Build:
    """The built workspace, from the cache when this snapshot and harness were built before."""
    tar = snapshot()
    digest = hashlib.sha256(tar.read_bytes()).hexdigest()[:16]
    versions = _tool_versions(tar)
    toolchain = CACHE / f"toolchain-node{versions['nodejs']}-pnpm{versions['pnpm']}"
    base = CACHE / f"{digest}-{_harness_version()}"
    tree = base / "llmgateway"
    bin_dir = toolchain / "node_modules" / ".bin"
    path = f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    result = Build(tree, bin_dir / "node", path)
    base.mkdir(parents=True, exist_ok=True)
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time (make and a test session)
        if (base / ".built").exists():
            return result
        log = base / "build.log"
        if not (toolchain / ".installed").exists():
            toolchain.mkdir(parents=True, exist_ok=True)
            _run(
                [
                    "npm",
                    "install",
                    "--silent",
                    "--prefix",
                    str(toolchain),
                    f"node@{versions['nodejs']}",
                    f"pnpm@{versions['pnpm']}",
                ],
                log,
            )
            (toolchain / ".installed").touch()
        shutil.rmtree(tree, ignore_errors=True)
        with tarfile.open(tar) as archive:
            archive.extractall(base, filter="data")
        guardrails = tree / "ee" / "guardrails"
        guardrails.mkdir(parents=True)
        (guardrails / "package.json").write_text(json.dumps(GUARDRAILS_PACKAGE, indent=1))
        (guardrails / "index.js").write_text(GUARDRAILS_INDEX)
        env = {**os.environ, "PATH": path, "HUSKY": "0", "CI": "true"}
        store = CACHE / "pnpm-store"
        _run(["pnpm", "install", "--frozen-lockfile", "--store-dir", str(store)], log, cwd=tree, env=env)
        _run([str(result.node), str(HERE / "build.mjs"), str(tree)], log, cwd=tree, env=env)
        (base / ".built").touch()
    return result


_databases = itertools.count(1)


@dataclass
class Gateway:
    url: str
    build: Build
    database: str
    redis: RedisServer
    proc: Proc
    env: dict[str, str]

    def psql(self, sql: str) -> str:
        done = subprocess.run(
            ["psql", *POSTGRES, "-d", self.database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def seed(
        self,
        org: str,
        api_key: str,
        provider_keys: dict[str, str],
        plan: str = "pro",
        policy: dict[str, object] | None = None,
        custom: dict[str, tuple[str, dict[str, object] | None]] | None = None,
    ) -> None:
        """An organization, its project (api-keys mode) and API key, a provider key per provider
        whose base URL is the given one, and its own (custom) providers, name -> (base URL,
        compliance attestation or None), through the gateway's own schema (seed.mjs)."""
        spec = {
            "org": {"id": org, "plan": plan, **({"policy": policy} if policy is not None else {})},
            "apiKey": api_key,
            "providerKeys": [{"provider": p, "baseUrl": url} for p, url in provider_keys.items()],
            "customProviders": [
                {"name": name, "baseUrl": url, "attestation": attestation}
                for name, (url, attestation) in (custom or {}).items()
            ],
        }
        shutil.copy(
            HERE / "seed.mjs", self.build.tree / "apps" / "gateway" / "authz-seed.mjs"
        )  # ours, beside its imports
        _run(
            [str(self.build.node), "authz-seed.mjs", json.dumps(spec)],
            self.proc.log_path.with_name("seed.log"),
            cwd=self.build.tree / "apps" / "gateway",
            env=self.env,
        )

    def forget_choices(self) -> None:
        """Its sticky provider choices and health live in its Redis: each case starts clean."""
        self.redis.client().flushall()


@contextlib.contextmanager
def running(workdir: Path) -> Iterator[Gateway]:
    built = build()
    workdir.mkdir(parents=True, exist_ok=True)
    database = f"authz_llmgateway_{os.getpid()}_{next(_databases)}"
    subprocess.run(
        ["psql", *POSTGRES, "-c", f"CREATE DATABASE {database}"], check=True, capture_output=True, timeout=60
    )
    redis = RedisServer(workdir / "redis").start()
    port = free_port()
    env = {
        "PATH": built.path,
        "HOME": str(workdir),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(redis.port),
        "GATEWAY_PORT": str(port),
        "METRICS_PORT": str(free_port()),
        "NODE_ENV": "development",  # its licence check then enables enterprise features, as for its tests
        "OTEL_SDK_DISABLED": "true",  # and GOOGLE_CLOUD_PROJECT: no call to the cloud metadata address
        "GOOGLE_CLOUD_PROJECT": "offline",
        "EXPLORATION_RATE": "0",  # else 1 % of requests try a random provider
        "ALLOW_INSECURE_PROVIDER_URLS": "true",  # provider base URLs on loopback, in plain HTTP
    }
    proc = Proc(
        "llmgateway",
        [str(built.node), "dist/serve.js"],
        workdir / "llmgateway.log",
        env=env,
        cwd=built.tree / "apps" / "gateway",
    )
    try:
        (built.tree / "packages" / "db" / "authz-migrate.mjs").write_text(MIGRATE)  # ours, beside its migrations
        _run(
            [str(built.node), "authz-migrate.mjs"], workdir / "migrate.log", cwd=built.tree / "packages" / "db", env=env
        )
        proc.start()
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            proc.check_alive()
            health = httpx.get(url + "/", timeout=2).json()["health"]
            return bool(health["redis"]["connected"] and health["database"]["connected"])

        wait_until(healthy, 90, "LLMGateway's gateway", interval=0.2)
        yield Gateway(url, built, database, redis, proc, env)
    finally:
        proc.stop()
        redis.stop()
        subprocess.run(
            ["psql", *POSTGRES, "-c", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"],
            capture_output=True,
            timeout=60,
        )
