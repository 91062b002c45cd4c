"""Pattern invalidation on the memory backend (and so on a hybrid's L1): it lets other tasks
run while it scans a large cache, and stays right when they write meanwhile."""

from __future__ import annotations

import asyncio

from fastapi_cachekit.backends.memory import MemoryBackend
from fastapi_cachekit.keys import GlobPattern

KEYS = 2500  # two and a half scan chunks


async def filled(keys: int) -> MemoryBackend:
    backend = MemoryBackend(max_items=keys)
    for i in range(keys):
        await backend.set(f"page:{i}", b"1", ttl=None, namespace=None, tags=())
    return backend


async def test_a_large_scan_lets_other_tasks_run_between_chunks() -> None:
    backend = await filled(KEYS)
    scan = asyncio.create_task(backend.invalidate_pattern(GlobPattern.compile("page:*"), None))
    await asyncio.sleep(0)  # the scan runs until its first pause, then this task runs again
    assert not scan.done()
    assert (await backend.stats()).entries == KEYS - 1000
    assert await scan == KEYS
    assert (await backend.stats()).entries == 0


async def test_a_key_moved_to_another_namespace_during_a_scan_is_kept() -> None:
    backend = MemoryBackend(max_items=KEYS)
    for i in range(KEYS):
        await backend.set(f"ns:{i}", b"1", ttl=None, namespace="ns", tags=())
    scan = asyncio.create_task(backend.invalidate_pattern(GlobPattern.compile("*"), "ns"))
    await asyncio.sleep(0)
    # Rewritten under no namespace while the scan is paused: no longer the namespace's.
    survivors = [f"ns:{i}" for i in range(KEYS) if await backend.exists(f"ns:{i}")]
    for key in survivors:
        await backend.set(key, b"2", ttl=None, namespace=None, tags=())
    assert await scan == KEYS - len(survivors)
    assert all([await backend.exists(key) for key in survivors])
