"""LoggingObserver: cache events as log records, one logger per layer, structured fields.

Each event goes to its layer's logger (`fastapi_cachekit.service`, `.memory`, `.hybrid`,
`.redis`, `.http`) with the fields a log pipeline can index (`extra`): `cache_outcome` (the
event's kind), `cache_layer`, `cache_namespace` (a route template on HTTP events),
`cache_reason`, `cache_count`, `cache_duration_ms` and `cache_key_hash` (`events.key_hash`:
the key itself may hold user data). Values and the admin token never reach an event, so they
never reach a log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..events import CacheEvent, EventKind, Layer, key_hash

__all__ = ["LOGGER_NAMES", "LoggingObserver", "event_fields"]

LOGGER_NAMES: dict[Layer, str] = {
    "service": "fastapi_cachekit.service",
    "memory": "fastapi_cachekit.memory",
    "l1": "fastapi_cachekit.hybrid",
    "l2": "fastapi_cachekit.hybrid",
    "redis": "fastapi_cachekit.redis",
    "http": "fastapi_cachekit.http",
    "route": "fastapi_cachekit.http",
}
"""The logger each layer's events go to."""


def event_fields(event: CacheEvent) -> dict[str, object]:
    """The structured fields of an event (`extra=` of its log record)."""
    return {
        "cache_outcome": event.kind,
        "cache_layer": event.layer,
        "cache_namespace": event.namespace,
        "cache_reason": event.reason,
        "cache_count": event.count,
        "cache_duration_ms": None if event.duration is None else event.duration * 1000.0,
        "cache_key_hash": None if event.key is None else key_hash(event.key),
        "cache_queued": event.queued,
    }


class LoggingObserver:
    """Logs every event (or those of `kinds`) at `level` (DEBUG: hits and misses are many;
    a production setup may pass the kinds it wants at INFO).

    `service.add_observer(LoggingObserver())`, then configure the `fastapi_cachekit` loggers
    as usual; the message is short and the fields are in the record's attributes.
    """

    def __init__(
        self, level: int = logging.DEBUG, kinds: Iterable[EventKind] | None = None
    ) -> None:
        self.level = level
        self.kinds = None if kinds is None else frozenset(kinds)
        self._loggers = {layer: logging.getLogger(name) for layer, name in LOGGER_NAMES.items()}

    def event(self, event: CacheEvent) -> None:
        if self.kinds is not None and event.kind not in self.kinds:
            return
        logger = self._loggers[event.layer]
        if not logger.isEnabledFor(self.level):  # most hits: nothing is built
            return
        where = "" if event.namespace is None else f" {event.namespace}"
        why = "" if event.reason is None else f" ({event.reason})"
        logger.log(
            self.level,
            "cache %s%s%s",
            event.kind,
            where,
            why,
            extra=event_fields(event),
        )
