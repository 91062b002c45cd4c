"""How the chaos suite classifies a run's records (pure: no process, no clock)."""

from __future__ import annotations

from .load import Read, Recorder, Write
from .metrics import FaultWindow, summarize

NAMES = ("scenario", "redis", "single")
REDIS_DOWN = FaultWindow(start=10.0, end=12.0, redis_down=True)


def ok_read(item: str, start: float, version: int, fill: str = "f") -> Read:
    return Read(item, "route", start, start + 0.01, version=version, fill=fill)


def test_a_read_that_starts_after_the_acknowledgement_with_an_older_version_is_stale() -> None:
    writes = [Write("a", 1.0, 2.0, version=2)]
    reads = [ok_read("a", 2.5, 1), ok_read("a", 3.5, 1)]
    result = summarize(NAMES, Recorder(reads, writes), REDIS_DOWN, bound=1.0, lost=0)
    assert result.stale == 2
    assert result.longest_stale == 1.5  # from the acknowledgement
    assert result.beyond_bound == 1


def test_a_read_that_started_before_the_acknowledgement_is_not_stale() -> None:
    writes = [Write("a", 1.0, 2.0, version=2)]
    reads = [ok_read("a", 1.5, 1), ok_read("b", 3.0, 0), ok_read("a", 3.0, 2)]
    result = summarize(NAMES, Recorder(reads, writes), REDIS_DOWN, bound=1.0, lost=0)
    assert result.stale == 0


def test_an_invalidation_acknowledged_while_redis_is_down_counts_from_the_fault_end() -> None:
    writes = [Write("a", 10.5, 11.0, version=2)]
    reads = [ok_read("a", 12.5, 1)]  # 1.5 s after the ack, 0.5 s after Redis answers again
    result = summarize(NAMES, Recorder(reads, writes), REDIS_DOWN, bound=1.0, lost=0)
    assert (result.stale, result.beyond_bound) == (1, 0)
    worker_killed = FaultWindow(10.0, 12.0, redis_down=False, killed_at=10.0)
    result = summarize(NAMES, Recorder(reads, writes), worker_killed, bound=1.0, lost=0)
    assert (result.stale, result.beyond_bound) == (1, 1)  # Redis answered all along


def test_only_requests_in_flight_on_the_killed_worker_are_dropped_not_failed() -> None:
    window = FaultWindow(10.0, 12.0, redis_down=False, killed_at=10.0)
    reads = [
        Read("a", "route", 9.5, 10.2, error="RemoteProtocolError"),  # in flight at the kill
        Read("a", "mw", 10.5, 10.6, error="HTTP 500"),
    ]
    result = summarize(NAMES, Recorder(reads, []), window, bound=1.0, lost=0)
    assert (result.failed, result.dropped) == (1, 1)


def test_requests_sent_on_the_killed_workers_connections_are_dropped_not_failed() -> None:
    window = FaultWindow(10.0, 12.0, redis_down=False, killed_at=10.0)
    reads = [
        Read("a", "route", 10.1, 10.1, error="RemoteProtocolError"),  # its keep-alive socket
        Read("a", "route", 10.2, 15.2, error="ReadTimeout"),  # the cache did not answer
        Read("a", "mw", 12.5, 12.5, error="RemoteProtocolError"),  # after the new worker
    ]
    result = summarize(NAMES, Recorder(reads, []), window, bound=1.0, lost=0)
    assert (result.failed, result.dropped) == (2, 1)


def test_back_to_hits_is_the_first_repeat_of_a_fill_first_seen_after_the_fault() -> None:
    reads = [
        ok_read("a", 9.0, 0, fill="old"),
        ok_read("a", 12.5, 0, fill="old"),  # a hit, but on an entry from before the fault
        ok_read("a", 12.6, 0, fill="new"),
        ok_read("a", 13.0, 0, fill="new"),
    ]
    result = summarize(NAMES, Recorder(reads, []), REDIS_DOWN, bound=1.0, lost=0)
    assert result.back_to_hits is not None
    assert abs(result.back_to_hits - 1.01) < 1e-9
    assert summarize(NAMES, Recorder(reads[:3], []), REDIS_DOWN, 1.0, 0).back_to_hits is None
