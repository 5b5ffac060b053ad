"""Redis Sentinel: authz finds the master through three sentinels; when the master dies and a
replica is promoted, enforcement through Envoy stays correct (cached policies keep blocking,
never a wrongful allow) and a policy saved on the new master is enforced."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest
import redis
from redis.asyncio.sentinel import Sentinel

from authz.state.layout import Keys
from authz.state.store import Store
from authz.v1 import policy_pb2
from devstack.stack import Proc, RedisServer, Stack, free_port, wait_until
from support.policies import DEMO_POLICY

pytestmark = pytest.mark.e2e
MASTER = "authz-master"


def sentinel_proc(workdir, port: int, master_port: int) -> Proc:
    conf = workdir / f"sentinel-{port}.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n"
        f"sentinel down-after-milliseconds {MASTER} 1000\n"
        f"sentinel failover-timeout {MASTER} 5000\n"
        f"sentinel parallel-syncs {MASTER} 1\n"
    )
    return Proc(f"sentinel-{port}", ["redis-server", str(conf), "--sentinel"], workdir / f"sentinel-{port}.log").start()


def post(stack, model: str) -> int:
    return httpx.post(
        stack.url + "/v1/chat/completions",
        json={"model": model, "messages": []},
        headers={"authorization": "Bearer sk-ha"},
        timeout=10,
    ).status_code


def test_failover_keeps_enforcement_correct(tmp_path):
    master = RedisServer(tmp_path).start()
    replica = RedisServer(tmp_path, extra=["--replicaof", "127.0.0.1", str(master.port)]).start()
    sentinel_ports = [free_port() for _ in range(3)]
    sentinels = [sentinel_proc(tmp_path, port, master.port) for port in sentinel_ports]
    addresses = ",".join(f"127.0.0.1:{p}" for p in sentinel_ports)
    stack = None
    try:
        wait_until(
            lambda: redis.Redis(port=sentinel_ports[0]).sentinel_master(MASTER)["num-other-sentinels"] == 2,
            20,
            "sentinels see each other",
        )
        stack = Stack.start(
            tmp_path / "stack",
            redis_server=master,
            authz_settings={
                "redis_sentinels": addresses,
                "redis_sentinel_master": MASTER,
                "refresh_interval_s": "1",
                "max_staleness_s": "30",
            },
        )
        stack.admin.load_catalog()
        stack.admin.add_api_key("sk-ha", "ha-org")
        stack.admin.set_policy("ha-org", **DEMO_POLICY)
        stack.wait_ready()
        wait_until(
            lambda: (
                redis.Redis(port=replica.port).get("authz:apikey:" + __import__("hashlib").sha256(b"sk-ha").hexdigest())
                is not None
            ),
            10,
            "replica in sync",
        )
        assert post(stack, "deepseek/deepseek-v3.2") == 403 and post(stack, "azure/gpt-4o") == 200

        master.proc.popen.send_signal(signal.SIGKILL)
        master.proc.popen.wait(5)
        seen = []
        # Through the failover: the cached policy keeps deciding; never a wrongful allow.
        wait_until(
            lambda: (
                redis.Redis(port=sentinel_ports[0]).sentinel_get_master_addr_by_name(MASTER)[1] == replica.port
                or seen.append(post(stack, "deepseek/deepseek-v3.2"))
            ),
            30,
            "replica promoted",
        )
        assert seen and set(seen) <= {403, 503}, seen
        assert post(stack, "deepseek/deepseek-v3.2") == 403

        async def change_on_new_master() -> None:
            client = Sentinel([("127.0.0.1", p) for p in sentinel_ports]).master_for(MASTER)
            await Store(client, Keys()).set_policy("ha-org", policy_pb2.CompliancePolicy(enabled=False), "test")
            await client.aclose()

        wait_until(lambda: asyncio.run(change_on_new_master()) is None, 20, "write through the new master")
        wait_until(lambda: post(stack, "deepseek/deepseek-v3.2") == 200, 15, "change on the new master enforced")
        assert stack.received()
    finally:
        if stack:
            stack.stop()
        for proc in sentinels:
            proc.stop()
        replica.stop()
        master.stop()
