"""Many commands in one round trip per node: a redis-py pipeline behind the connection's
breaker, turns and error translation, with scripts sent as EVALSHA like single calls.

A single command is sent plain, which costs the client less than a pipeline of one.

Not a transaction: each command (each script) is atomic on its own, as it is when sent alone.
On a cluster, redis-py groups the commands by the node that owns their slot and follows
MOVED/ASK for the ones that need it, so every command must keep to one slot (every script
declares its keys; see `scripts`).
"""

from __future__ import annotations

from typing import Any

from redis import exceptions as rx

from .connection import Client, RedisConnection

__all__ = ["Pipeline"]


class Pipeline:
    """Commands gathered with `command` and `script`, then sent together by `run`."""

    __slots__ = ("_commands", "_redis", "_sources")

    def __init__(self, redis: RedisConnection) -> None:
        self._redis = redis
        self._commands: list[tuple[Any, ...]] = []
        self._sources: dict[bytes, str] = {}

    def __len__(self) -> int:
        return len(self._commands)

    def command(self, *args: Any) -> None:
        self._commands.append(args)

    def script(self, source: str, keys: list[str], args: list[Any]) -> None:
        """Queue a Lua script call (EVALSHA; the script is loaded if a node lacks it)."""
        sha = self._redis.sha(source)
        self._sources[sha] = source
        self._commands.append(("EVALSHA", sha, len(keys), *keys, *args))

    async def run(self) -> list[Any]:
        """Every command's reply, in order. A command Redis refused raises its error (as
        the connection translates it), after the others have run."""
        if not self._commands:
            return []
        return await self._redis.call(self._send)

    async def _send(self, client: Client) -> list[Any]:
        if len(self._commands) == 1:
            return [await self._send_one(client, self._commands[0])]
        replies = await _execute(client, self._commands)
        # A server that does not know a script yet (new, restarted, or a new cluster node)
        # answers NOSCRIPT: load it there and send those calls again.
        unknown = [i for i, reply in enumerate(replies) if isinstance(reply, rx.NoScriptError)]
        if unknown:
            for sha in {self._commands[i][1] for i in unknown}:
                await client.script_load(self._sources[sha])
            again = await _execute(client, [self._commands[i] for i in unknown])
            for i, reply in zip(unknown, again, strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _send_one(self, client: Client, args: tuple[Any, ...]) -> Any:
        """One command's reply; a script the server does not know is loaded and sent again,
        within the same call (as in a pipeline)."""
        try:
            return await client.execute_command(*args)
        except rx.NoScriptError:
            await client.script_load(self._sources[args[1]])
            return await client.execute_command(*args)


async def _execute(client: Client, commands: list[tuple[Any, ...]]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for args in commands:
        pipe.execute_command(*args)
    return list(await pipe.execute(raise_on_error=False))
