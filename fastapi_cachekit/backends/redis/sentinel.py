"""Redis Sentinel: where a `redis+sentinel://` URL points, and a client for its primary.

`redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db][?options]`
(`rediss+sentinel://` over TLS). The hosts are the sentinels (port 26379 unless given). The
client asks them for the service's primary whenever it opens a connection, so after a failover
new connections reach the promoted replica, while those to the old primary fail and are
dropped. The user and password are the primary's; the options `sentinel_username` and
`sentinel_password` authenticate to sentinels that require it. The other options are
redis-py's, as in a redis:// URL, for the primary; over TLS the ssl_* ones apply to the
sentinels too.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.connection import parse_url as parse_redis_url
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from ...errors import ConfigurationError

__all__ = ["SentinelAddress", "close_sentinels", "is_sentinel_url", "primary_client"]

# Each Sentinel scheme and the plain scheme that says whether TLS is used.
_SCHEMES = {"redis+sentinel": "redis", "rediss+sentinel": "rediss"}
_DEFAULT_PORT = 26379
_SENTINEL_AUTH = {"sentinel_username": "username", "sentinel_password": "password"}
_FORM = "redis+sentinel://[user:password@]host1:26379,host2:26379/service[/db]"


class SentinelAddress(NamedTuple):
    """The sentinels, the service they watch, and redis-py connection options for each."""

    sentinels: list[tuple[str, int]]
    service: str
    primary_options: dict[str, Any]
    sentinel_options: dict[str, Any]

    @classmethod
    def parse(cls, url: str) -> SentinelAddress:
        """Read a `redis+sentinel://` URL (ConfigurationError, saying what is wrong)."""
        scheme, _, rest = url.partition("://")
        rest, _, query = rest.partition("?")
        netloc, _, path = rest.partition("/")
        credentials, _, hosts = netloc.rpartition("@")
        service, _, db = path.partition("/")
        if not service:
            raise ConfigurationError(
                f"a Sentinel URL names the service after the sentinels: {_FORM} "
                "(CACHEKIT_REDIS_URL)"
            )
        if db and not db.isdigit():
            raise ConfigurationError(
                f"the database in a Sentinel URL is a number after the service, not {db!r}: {_FORM}"
            )
        plain = _SCHEMES[scheme.lower()]
        userinfo = f"{credentials}@" if credentials else ""
        try:
            options: dict[str, Any] = dict(
                parse_redis_url(f"{plain}://{userinfo}sentinel/{db}?{query}")
            )
        except ValueError as exc:
            raise ConfigurationError(f"{exc} (CACHEKIT_REDIS_URL)") from exc
        options.pop("host", None)
        options.pop("connection_class", None)
        sentinel_options = {
            name: options.pop(option)
            for option, name in _SENTINEL_AUTH.items()
            if option in options
        }
        if plain == "rediss":
            options["ssl"] = True  # the Sentinel pool picks its TLS connections from this flag
            sentinel_options.update({k: v for k, v in options.items() if k.startswith("ssl")})
        sentinels = [_host_and_port(part) for part in hosts.split(",")]
        return cls(sentinels, unquote(service), options, sentinel_options)


def is_sentinel_url(url: str) -> bool:
    return url.partition("://")[0].lower() in _SCHEMES


def primary_client(url: str, options: dict[str, Any]) -> Redis:
    """A client of the primary a Sentinel URL names; `options` (timeouts, pool size, retry)
    apply to its connections, and the timeouts to the sentinels' too."""
    address = SentinelAddress.parse(url)
    timeouts = {name: value for name, value in options.items() if name.startswith("socket_")}
    sentinels = Sentinel(
        address.sentinels, sentinel_kwargs={**timeouts, **address.sentinel_options}
    )
    # The URL's own options win, as redis-py's from_url lets them for a redis:// URL.
    primary = {**options, **address.primary_options}
    client: Redis = sentinels.master_for(address.service, **primary)
    return client


async def close_sentinels(client: Redis) -> None:
    """Close the connections to the sentinels a `primary_client` asked (none otherwise): the
    client's own `aclose` closes only its connections to the primary."""
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        await pool.sentinel_manager.aclose()


def _host_and_port(part: str) -> tuple[str, int]:
    try:
        parsed = urlsplit(f"//{part}")
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host = port = None
    if not host:
        raise ConfigurationError(
            f"{part!r} is not a sentinel's host[:port] in the Sentinel URL: {_FORM}"
        )
    return host, port or _DEFAULT_PORT
