"""What a run's records say: failed requests, latencies, time back to hits, stale reads.

A read is stale when it started after a write was acknowledged (the write's response came
back) and carries an older version than that write. Its staleness is counted from the
acknowledgement, or, for an invalidation acknowledged while Redis was unreachable, from the
moment the fault ended: no invalidation can reach a Redis that does not answer, and the
guarantee is that it takes effect within the bound once Redis answers again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .load import Read, Recorder, Write

__all__ = ["FaultWindow", "Outcome", "summarize"]


@dataclass(frozen=True)
class FaultWindow:
    """When the fault was in force (time.monotonic). `redis_down`: (part of) Redis did not
    answer meanwhile; `killed_at`: when a worker was SIGKILLed."""

    start: float
    end: float
    redis_down: bool
    killed_at: float | None = None


@dataclass(frozen=True)
class Outcome:
    """One row of the chaos table."""

    scenario: str
    backend: str
    topology: str
    requests: int
    writes: int  # acknowledged invalidations, in all
    writes_during: int  # acknowledged while the fault was in force
    failed: int
    dropped: int  # in flight on a SIGKILLed worker: no cache can answer those
    during_ms: tuple[float, float] | None  # p50, p99 of requests started during the fault
    after_ms: tuple[float, float] | None
    back_to_hits: float | None  # seconds from the fault's end to a hit on a new fill
    stale: int
    longest_stale: float  # seconds from the acknowledgement
    beyond_bound: int
    bound: float
    lost: int  # items still serving an acknowledged-invalidated version at the end
    failures: tuple[str, ...] = ()  # each failed request: its error, when it ran (not a column)


def summarize(
    names: tuple[str, str, str],
    recorder: Recorder,
    window: FaultWindow,
    bound: float,
    lost: int,
) -> Outcome:
    reads, writes = list(recorder.reads), list(recorder.writes)
    requests: list[Read | Write] = [*reads, *writes]
    acknowledged = [w for w in writes if w.version is not None]
    failed = [r for r in requests if r.error is not None]
    dropped = [r for r in failed if _lost_with_the_worker(r, window)]
    ages = _stale_ages(reads, writes, window)
    during = [r for r in requests if window.start <= r.start < window.end]
    after = [r for r in requests if r.start >= window.end]
    return Outcome(
        *names,
        requests=len(requests),
        writes=len(acknowledged),
        writes_during=sum(1 for w in acknowledged if window.start <= w.end <= window.end),
        failed=len(failed) - len(dropped),
        dropped=len(dropped),
        during_ms=_p50_p99(during),
        after_ms=_p50_p99(after),
        back_to_hits=_back_to_hits(reads, window.end),
        stale=len(ages),
        longest_stale=max((raw for raw, _ in ages), default=0.0),
        beyond_bound=sum(1 for _, effective in ages if effective > bound),
        bound=bound,
        lost=lost,
        failures=tuple(_failure(r, window) for r in failed if not _lost_with_the_worker(r, window)),
    )


def _failure(record: Read | Write, window: FaultWindow) -> str:
    """A failed request in words: what, its error, and when it ran against the fault."""
    what = (
        f"/{record.endpoint}/{record.item}" if isinstance(record, Read) else f"write {record.item}"
    )
    start, end = record.start - window.start, record.end - window.start
    return f"{what}: {record.error}, {start:+.3f}..{end:+.3f} s from the fault's start"


# Errors of a connection, not of an answer: what a client meets on a keep-alive connection
# whose worker was SIGKILLed. A timeout or an HTTP error status is never one of them.
_CONNECTION_LOST = frozenset({"RemoteProtocolError", "ReadError", "WriteError"})


def _lost_with_the_worker(record: Read | Write, window: FaultWindow) -> bool:
    """In flight on the SIGKILLed worker when it died, or sent on one of its connections
    afterwards, before its replacement was ready: no cache can answer those."""
    killed_at = window.killed_at
    if killed_at is None:
        return False
    if record.start <= killed_at <= record.end:
        return True
    return record.error in _CONNECTION_LOST and killed_at <= record.start <= window.end


def _stale_ages(
    reads: Sequence[Read], writes: Sequence[Write], window: FaultWindow
) -> list[tuple[float, float]]:
    """(age from the acknowledgement, age from when it could take effect) per stale read."""
    acks: dict[str, list[Write]] = defaultdict(list)
    for write in writes:
        if write.version is not None:
            acks[write.item].append(write)
    ages = []
    for read in reads:
        if read.version is None:
            continue
        missed = [
            w.end
            for w in acks[read.item]
            if w.end < read.start and w.version is not None and w.version > read.version
        ]
        if missed:
            acknowledged = min(missed)
            effective = acknowledged
            if window.redis_down and window.start <= acknowledged <= window.end:
                effective = window.end
            ages.append((read.start - acknowledged, read.start - effective))
    return ages


def _p50_p99(records: Sequence[Read | Write]) -> tuple[float, float] | None:
    latencies = sorted((r.end - r.start) * 1000 for r in records if r.error is None)
    if not latencies:
        return None
    return latencies[len(latencies) // 2], latencies[
        min(len(latencies) - 1, len(latencies) * 99 // 100)
    ]


def _back_to_hits(reads: Sequence[Read], fault_end: float) -> float | None:
    """Seconds from the fault's end to the first hit on an entry filled after it."""
    first_seen: dict[str, float] = {}
    for read in sorted(reads, key=lambda r: r.end):
        if read.fill is None:
            continue
        if read.fill not in first_seen:
            first_seen[read.fill] = read.end
        elif first_seen[read.fill] >= fault_end:
            return read.end - fault_end
    return None
