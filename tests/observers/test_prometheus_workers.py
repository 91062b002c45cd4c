"""/metrics under two real uvicorn workers in prometheus-client's multiprocess mode: whichever
worker answers the scrape, the counters are the sum over both workers, and they equal the
admin stats (the shared Redis counters) after a scripted load."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from .scrape import Scrape

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
COPIES = 3  # requests per path in a round: one miss that stores, then hits
MAX_ROUNDS = 40


class Workers:
    """`uvicorn tests.observers.metrics_app:app --workers 2`, in its own process group."""

    def __init__(self, redis_url: str, directory: Path) -> None:
        self.metrics_dir = directory / "prometheus"
        self.metrics_dir.mkdir()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        env = {name: value for name, value in os.environ.items() if "CACHEKIT_" not in name}
        env |= {
            "CACHEKIT_BACKEND": "redis",
            "CACHEKIT_REDIS_URL": redis_url,
            "CACHEKIT_KEY_PREFIX": f"metrics-{uuid.uuid4().hex[:8]}",
            "CACHEKIT_STATS_FLUSH_INTERVAL_SECONDS": "0.05",
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            "PYTHONPATH": str(ROOT),
        }
        argv = [sys.executable, "-m", "uvicorn", "tests.observers.metrics_app:app", "--workers"]
        argv += ["2", "--port", self.url.rsplit(":", 1)[1], "--log-level", "warning"]
        self.log = directory / "uvicorn.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def get(self, path: str) -> httpx.Response:
        """One request on a connection of its own, so that either worker may accept it."""
        return httpx.get(self.url + path, headers={"connection": "close"}, timeout=10)

    def wait_until(self, condition: Callable[[], Any], what: str) -> Any:
        """Poll `condition` until it answers something true (bounded, not a timing claim)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"uvicorn exited:\n{self.log.read_text()[-3000:]}")
            try:
                answer = condition()
            except httpx.TransportError:
                answer = None
            if answer:
                return answer
            time.sleep(0.02)
        pytest.fail(f"{what}:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture(scope="module")
def workers(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    server = Workers(redis_url, tmp_path_factory.mktemp("workers"))
    try:
        server.wait_until(lambda: server.get("/admin/cache/stats").status_code == 200, "no answer")
        yield server
    finally:
        server.stop()


def per_worker_hits(metrics_dir: Path) -> dict[str, float]:
    """Each worker's own hit count, read from its own multiprocess file alone."""
    hits = {}
    for db in metrics_dir.glob("counter_*.db"):
        pid = db.stem.split("_", 1)[1]
        alone = metrics_dir.parent / f"worker-{pid}"
        alone.mkdir(exist_ok=True)
        shutil.copy(db, alone / db.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        hits[pid] = sum(
            s.value
            for m in registry.collect()
            for s in m.samples
            if s.name == "cachekit_lookups_total" and s.labels.get("outcome") == "hit"
        )
    return hits


def test_metrics_sum_the_workers_and_match_the_admin_stats(workers: Workers) -> None:
    served_by: set[str] = set()
    rounds = 0
    while rounds < 2 or (len(served_by) < 2 and rounds < MAX_ROUNDS):
        for path in (f"/items/{rounds}", f"/pages/{rounds}", f"/squares/{rounds}"):
            for _ in range(COPIES):
                response = workers.get(path)
                assert response.status_code == 200, response.text
                served_by.add(response.headers["x-worker-pid"])
        rounds += 1
    assert len(served_by) == 2, "one worker served every request"
    expected_hits = rounds * 3 * (COPIES - 1)

    first = Scrape(workers.get("/metrics").text)
    hits = first.total("cachekit_lookups_total", outcome="hit")
    misses = first.total("cachekit_lookups_total", outcome="miss")
    assert hits == expected_hits

    # The admin stats are the shared Redis counters, which each worker flushes every 0.05 s.
    def stats_caught_up() -> dict[str, Any] | None:
        stats: dict[str, Any] = workers.get("/admin/cache/stats").json()
        return stats if (stats["total_hits"], stats["total_misses"]) == (hits, misses) else None

    stats = workers.wait_until(stats_caught_up, f"admin stats never reached {hits}/{misses}")
    assert stats["total_entries"] == rounds * 3

    # Whichever worker answers the scrape, it reports both workers' counts.
    scraped_by: set[str] = set()
    for _ in range(MAX_ROUNDS):
        response = workers.get("/metrics")
        scraped_by.add(response.headers["x-worker-pid"])
        scrape = Scrape(response.text)
        assert scrape.total("cachekit_lookups_total", outcome="hit") == hits
        assert scrape.total("cachekit_lookups_total", outcome="miss") == misses
        assert scrape.total("cachekit_entries") == rounds * 3
        if len(scraped_by) == 2:
            break
    assert len(scraped_by) == 2, "one worker answered every scrape"

    by_worker = per_worker_hits(workers.metrics_dir)
    assert set(by_worker) == served_by
    assert sum(by_worker.values()) == hits
