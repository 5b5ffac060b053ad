"""What the command groups share: settings loaded on demand, a Store for the Redis commands,
catalog files, and errors printed as `authz: ...` with an exit code."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable

from authz import config
from authz.policy import catalog as catalog_mod
from authz.state.store import Keys, StateLost, Store
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


def with_store(args: argparse.Namespace, action: Callable[[Store], Awaitable[int]]) -> int:
    """Run `action` against the Redis the settings name, reporting Redis errors by its URL."""
    from redis.exceptions import RedisError

    from authz.state.redis_client import redis_client

    s = settings(args)

    async def run() -> int:
        redis = redis_client(s)
        try:
            return await action(Store(redis, Keys(s.key_prefix)))
        except RedisError as exc:
            raise CommandError(f"Redis at {s.redis_url}: {exc}") from None
        except StateLost as exc:
            raise CommandError(str(exc)) from None
        finally:
            await redis.aclose()

    return asyncio.run(run())


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
