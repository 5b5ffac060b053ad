"""What the command groups share: settings loaded on demand, a Store for the Redis commands,
catalog files, and errors printed as `authz: ...` with an exit code."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Literal

from authz import config
from authz.policy import catalog as catalog_mod
from authz.state.layout import Keys
from authz.state.store import Store
from authz.state.writes import StateLost
from authz.v1 import catalog_pb2

# Exit codes: 1 the command failed, 2 it was used wrongly (arguments, settings).
FAILED, USAGE = 1, 2


class CommandError(Exception):
    """Stops a command: main prints `authz: <message>` and exits with `code`."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def settings(args: argparse.Namespace) -> config.Settings:
    """The service's settings (--config, AUTHZ_*), read only by the commands that use them."""
    try:
        return config.load(args.config)
    except config.ConfigError as exc:
        raise CommandError(f"bad configuration: {exc}", USAGE) from None


def redis_location(s: config.Settings) -> str:
    """Where the Redis commands go, for messages: the URL without its password, and the prefix."""
    from authz.state.redis_client import redact_url  # redis: loaded by the commands that use it

    url = redact_url(s.redis_url)
    if s.redis_sentinels:
        url += f" (sentinels {s.redis_sentinels}, master {s.redis_sentinel_master})"
    return f"{url} (key prefix {s.key_prefix!r})"


# What a Redis command needs of the state marker (Keys.state): "any" reads what is there (catalog
# diff on a new install), "read" and "write" need an authz state, "create" (catalog load,
# bootstrap) makes one, in an empty Redis or with --init: never in someone else's by mistake.
Access = Literal["any", "read", "write", "create"]


def with_store(args: argparse.Namespace, action: Callable[[Store], Awaitable[int]], access: Access = "read") -> int:
    """Run `action` against the Redis the settings name, reporting Redis errors by its URL.
    Every write says on standard error which Redis it goes to."""
    from redis.exceptions import RedisError

    from authz.state.redis_client import redis_client

    s = settings(args)
    where = redis_location(s)

    async def run() -> int:
        redis = redis_client(s)
        try:
            store = Store(redis, Keys(s.key_prefix))
            if access != "any" and await redis.hget(store.keys.state, "epoch") is None:
                await _no_state(store, access, where, getattr(args, "init", False))
            if access in ("write", "create"):
                print(f"authz: writing to Redis at {where}", file=sys.stderr)
            return await action(store)
        except RedisError as exc:
            raise CommandError(f"Redis at {where}: {exc}") from None
        except StateLost as exc:
            raise CommandError(str(exc)) from None
        finally:
            await redis.aclose()

    return asyncio.run(run())


async def _only_ours(store: Store, at_most: int = 100_000) -> bool:
    """Whether every key is under authz's prefix (an empty Redis, or one a starting authz has
    written its streams to): a Redis with anything else in it is not assumed to be authz's."""
    seen = 0
    async for key in store.redis.scan_iter(count=1000):
        seen += 1
        if not key.decode(errors="replace").startswith(store.keys.prefix) or seen > at_most:
            return False
    return True


INIT_HELP = "create the authz state in a Redis that holds other data but none of authz's (an empty one needs no flag)"


async def _no_state(store: Store, access: Access, where: str, init: bool) -> None:
    if access == "read" and any([await store.redis.exists(key) for key in store.keys.streams]):
        return  # authz's Redis after a data loss: its event streams are still worth reading
    if access == "create" and (init or await _only_ours(store)):
        return
    if access == "create":
        raise CommandError(
            f"Redis at {where} holds other keys than authz's ({store.keys.prefix}*) and no authz "
            "state: it may be another service's Redis, or authz's after a data loss. Check "
            "AUTHZ_REDIS_URL / --config; to create the state there anyway, add --init"
        )
    raise CommandError(
        f"Redis at {where} holds no authz state: is this the right Redis (AUTHZ_REDIS_URL, --config)? "
        "A new install loads its catalog first (authz bootstrap --catalog FILE)"
    )


def read_catalog(path: str) -> catalog_pb2.Catalog:
    """A catalog file (or - for standard input), parsed and checked. Raises CommandError."""
    try:
        if path == "-":
            return catalog_mod.parse(sys.stdin.buffer.read())
        with open(path, "rb") as f:
            return catalog_mod.parse(f.read())
    except (OSError, catalog_mod.CatalogError) as exc:
        raise CommandError(str(exc)) from None


def os_user() -> str:
    """The default audit actor: the OS user running the CLI (a uid when it has no name)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid-{os.getuid()}"


def count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be 0 or more")
    return value


def noun(group: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    return group.add_subparsers(dest="action", required=True, metavar="ACTION")


async def require_known_org(store: Store, org_id: str) -> None:
    """Refuse an org Redis holds nothing of (no plan, policy, settings or API key), naming the
    nearest known one: a typo must not read as an empty policy."""
    from authz.suggest import did_you_mean

    if await store.org_fields(org_id) or await store.api_keys(org_id):
        return
    known = await store.org_ids()
    raise CommandError(f"Redis holds no org {org_id!r}{did_you_mean(org_id, known)}; list them with: authz org list")
