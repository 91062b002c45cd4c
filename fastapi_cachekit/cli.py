"""The `cachekit` command (also `python -m fastapi_cachekit`): look at and manage a shared cache.

It reads the same CACHEKIT_* settings (and .env) as the app, so it sees the app's keys.
Exit codes, for scripts:

- 0: done;
- 1: the key is not in the cache (`get`, `inspect`);
- 2: usage or configuration error (bad arguments, invalid settings, `clear` not confirmed);
- 3: the backend cannot be reached (nothing was changed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from .backends.base import CacheBackend
from .errors import BackendError, CacheError, ConfigurationError, SerializationError
from .factory import create_cache
from .serialization import Codec, make_codec
from .service import CacheService
from .settings import CacheSettings, load_settings

__all__ = ["EXIT_NOT_FOUND", "EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class UsageError(Exception):
    """Bad arguments the parser cannot see (exit 2)."""


class Unreachable(Exception):
    """The backend did not answer (exit 3)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cachekit",
        description="Inspect and manage a fastapi-cachekit cache, configured like the app "
        "(CACHEKIT_* variables and .env).",
        epilog="Exit codes: 0 done, 1 key not found, 2 usage or configuration error, "
        "3 backend unreachable.",
    )
    parser.add_argument("--backend", choices=["redis", "hybrid", "memory"], help="the backend")
    parser.add_argument("--redis-url", help="Redis URL (default: CACHEKIT_REDIS_URL)")
    parser.add_argument("--json", action="store_true", help="print JSON, for scripts")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("stats", help="hits, misses, entries, memory")
    for name, text in (("get", "print a key's value"), ("inspect", "describe a stored key")):
        command = commands.add_parser(name, help=text)
        command.add_argument("key")
        command.add_argument("--namespace", "-n", help="the key's namespace")
    invalidate = commands.add_parser(
        "invalidate", help="remove entries by tag, namespace or key pattern"
    )
    invalidate.add_argument("--tag", "-t", action="append", default=[], help="repeatable")
    invalidate.add_argument("--namespace", "-n", help="every entry of this namespace")
    invalidate.add_argument("--pattern", "-p", help="a glob over keys (`user:*`)")
    commands.add_parser("cleanup", help="remove expired entries now")
    clear = commands.add_parser("clear", help="remove every entry of this cache")
    clear.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
        if args.command == "clear" and not _confirmed(args.yes):
            raise UsageError("clear removes every entry of the cache: confirm, or pass --yes")
        report, code = asyncio.run(_run(args, settings))
    except (UsageError, ConfigurationError) as exc:
        print(f"cachekit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CacheError as exc:  # bad input: a key, namespace, tag or pattern
        print(f"cachekit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Unreachable as exc:
        print(f"cachekit: error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(json.dumps(report, default=str) if args.json else _readable(report))
    return code


def _settings(args: argparse.Namespace) -> CacheSettings:
    """The app's settings, with the flags on top; a Redis URL alone selects Redis, since the
    memory backend lives inside each app process where no command can see it."""
    overrides: dict[str, Any] = {}
    if args.redis_url:
        overrides["redis_url"] = args.redis_url
    if args.backend:
        overrides["backend"] = args.backend
    settings = load_settings(**overrides)
    if settings.backend == "memory" and not args.backend:
        if settings.redis_url is None:
            raise UsageError(
                "no shared cache to talk to: the memory backend lives inside each app "
                "process. Pass --redis-url (or set CACHEKIT_REDIS_URL)"
            )
        settings = load_settings(settings, backend="redis")
    return settings


def _confirmed(yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        return False
    answer = input("Remove every entry of this cache? Type 'yes' to confirm: ")
    return answer.strip().lower() == "yes"


async def _run(args: argparse.Namespace, settings: CacheSettings) -> tuple[dict[str, Any], int]:
    cache = create_cache(settings, cleanup_interval_seconds=0)
    try:
        await _probe(cache.backend)
        report, code = await _command(args, cache, _codec(settings))
        await _probe(cache.backend)  # writes queued while unreachable would be lost here
        return report, code
    finally:
        await cache.close()


async def _probe(backend: CacheBackend) -> None:
    try:
        stats = await backend.stats()
    except BackendError as exc:
        raise Unreachable(f"the cache backend cannot be reached: {exc}") from None
    if stats.pending_invalidations:
        raise Unreachable("the cache backend went away: the invalidation was not applied")


async def _command(
    args: argparse.Namespace, cache: CacheService, codec: Codec
) -> tuple[dict[str, Any], int]:
    command = args.command
    if command == "stats":
        return (await cache.get_stats()).model_dump(mode="json"), EXIT_OK
    if command in ("get", "inspect"):
        return await _lookup(cache, codec, args.key, args.namespace, full=command == "inspect")
    if command == "invalidate":
        return {"removed": await _invalidate(cache, args)}, EXIT_OK
    if command == "cleanup":
        return {"removed": await cache.cleanup_expired()}, EXIT_OK
    return {"removed": await cache.clear_all()}, EXIT_OK


async def _lookup(
    cache: CacheService, codec: Codec, key: str, namespace: str | None, *, full: bool
) -> tuple[dict[str, Any], int]:
    data = await cache.get_raw(key, namespace, count=False)  # not a hit nor a miss of the app
    report: dict[str, Any] = {"key": key, "namespace": namespace, "found": data is not None}
    if data is None:
        return report, EXIT_NOT_FOUND
    try:
        report["value"] = codec.decode(data)
    except SerializationError:
        # Stored by something with its own format, such as a cached HTTP response.
        report["value"] = None
        report["note"] = "not in the codec's format (a stored HTTP response?)"
    if full:
        report["stored_bytes"] = len(data)
        report["value_type"] = type(report["value"]).__name__
    return report, EXIT_OK


async def _invalidate(cache: CacheService, args: argparse.Namespace) -> int:
    if args.pattern is not None:
        if args.tag:
            raise UsageError("give either --pattern (optionally with --namespace) or --tag")
        return await cache.invalidate_pattern(args.pattern, args.namespace)
    if args.tag and args.namespace is None:
        return await cache.invalidate_tags(args.tag)
    if args.namespace is not None and not args.tag:
        return await cache.invalidate_namespace(args.namespace)
    raise UsageError(
        "say what to invalidate: --tag TAG (repeatable), --namespace NS, or --pattern GLOB"
    )


def _codec(settings: CacheSettings) -> Codec:
    key = settings.signing_key.get_secret_value() if settings.signing_key else None
    return make_codec(settings.serializer, key)


def _readable(report: dict[str, Any]) -> str:
    """Two aligned columns, one row per field."""
    rows = [(name, _cell(value)) for name, value in report.items()]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)
