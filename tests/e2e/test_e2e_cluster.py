"""Redis Cluster (3 masters, 3 replicas on loopback): with a hash-tagged key_prefix every
transaction stays in one slot; enforcement through Envoy is correct, and stays correct when
the master holding the policies dies and its replica takes over."""

from __future__ import annotations

import signal
import socket
import subprocess

import httpx
import pytest
import redis

from devstack.stack import RedisServer, Stack, wait_until
from support.policies import DEMO_POLICY


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too (Redis Cluster nodes)."""
    import random

    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


pytestmark = pytest.mark.e2e
PREFIX = "{authz}:"


@pytest.fixture
def cluster(tmp_path):
    nodes = []
    try:
        for _ in range(6):
            port = free_cluster_port()
            workdir = tmp_path / f"node-{port}"
            workdir.mkdir()
            nodes.append(
                RedisServer(
                    workdir,
                    port=port,
                    extra=[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        f"nodes-{port}.conf",
                        "--cluster-node-timeout",
                        "1000",
                        "--repl-diskless-sync-delay",
                        "0",
                    ],
                ).start()
            )
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *[f"127.0.0.1:{n.port}" for n in nodes],
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        wait_until(lambda: redis.Redis(port=nodes[0].port).cluster("info")["cluster_state"] == "ok", 20, "cluster")

        def replicas_in_sync() -> bool:
            roles = [redis.Redis(port=n.port).info("replication") for n in nodes]
            replicas = [r for r in roles if r["role"] == "slave"]
            return len(replicas) == 3 and all(r["master_link_status"] == "up" for r in replicas)

        wait_until(replicas_in_sync, 30, "replicas in sync")
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def post(stack, model: str) -> int:
    return httpx.post(
        stack.url + "/v1/chat/completions",
        json={"model": model, "messages": []},
        headers={"authorization": "Bearer sk-cl"},
        timeout=10,
    ).status_code


def test_cluster_enforcement_and_failover(cluster, tmp_path):
    client = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    owner = client.get_node_from_key(PREFIX + "catalog")  # the master holding every {authz} key
    client.close()
    [victim] = [n for n in cluster if n.port == owner.port]
    entry = next(n for n in cluster if n is not victim)  # authz and the test connect through this one
    with Stack.start(
        tmp_path / "stack",
        redis_server=entry,
        authz_settings={
            "redis_cluster": "true",
            "key_prefix": PREFIX,
            "refresh_interval_s": "1",
            "max_staleness_s": "30",
        },
    ) as s:
        s.admin.load_catalog()
        s.admin.add_api_key("sk-cl", "cl-org")
        s.admin.set_policy("cl-org", **DEMO_POLICY)
        s.wait_ready()
        assert post(s, "deepseek/deepseek-v3.2") == 403 and post(s, "azure/gpt-4o") == 200
        wait_until(lambda: [e["org_id"] for e in s.admin.security_events()] == ["cl-org"], 10, "event written")

        # Kill the master that holds the {authz} slot; its replica takes over.
        victim.proc.popen.send_signal(signal.SIGKILL)
        seen = []

        def promoted() -> bool:
            seen.append(post(s, "deepseek/deepseek-v3.2"))
            slots = redis.Redis(port=entry.port).execute_command("CLUSTER", "SLOTS")
            owners = {slot[2][1] for slot in slots}
            state = redis.Redis(port=entry.port).cluster("info")["cluster_state"]
            return victim.port not in owners and state == "ok"

        wait_until(promoted, 30, "replica promoted")
        assert set(seen) <= {403, 503}, seen  # never a wrongful allow
        wait_until(lambda: post(s, "deepseek/deepseek-v3.2") == 403, 15, "enforcing after failover")
        # The topology every node reports converges a little after the promotion.
        wait_until(lambda: s.admin.set_policy("cl-org", enabled=False) is not None, 20, "write after failover")
        wait_until(lambda: post(s, "deepseek/deepseek-v3.2") == 200, 15, "change after failover enforced")
