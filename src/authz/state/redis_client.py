"""The Redis client for the configured deployment: a single server, Sentinel or Cluster.

Timeouts are short on purpose: the Check path never waits on Redis once warm, and a cold read
that cannot finish quickly is better answered 503 than held until Envoy times out.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel

from authz.config import Settings, redact_url
from authz.state.layout import RedisClient

__all__ = ["redact_url", "redis_client"]


def redis_client(settings: Settings, socket_timeout: float | None = None) -> RedisClient:
    options: dict[str, Any] = dict(
        socket_timeout=socket_timeout or max(settings.redis_timeout_s, 1.0),
        socket_connect_timeout=1.0,
        health_check_interval=10,
        retry_on_timeout=False,
    )
    if settings.redis_password:  # the URL has none (config refuses both)
        options["password"] = settings.redis_password
    if settings.redis_cluster:
        options.pop("retry_on_timeout")  # not a cluster option
        return RedisCluster.from_url(settings.redis_url, **options)
    sentinels = settings.sentinels()
    if not sentinels:
        return aioredis.Redis.from_url(settings.redis_url, **options)
    url = urllib.parse.urlsplit(settings.redis_url)
    credentials: dict[str, Any] = dict(
        username=url.username,
        password=options.pop("password", None) or url.password,
        db=int(url.path.strip("/") or 0),
    )
    sentinel = Sentinel(sentinels, socket_timeout=1.0, socket_connect_timeout=1.0)  # type: ignore[no-untyped-call]
    return sentinel.master_for(settings.redis_sentinel_master, **options, **credentials)
