"""@cached on the shapes of ordinary code: sync functions, results that must not be stored,
and namespaces and tags computed from the arguments."""

from __future__ import annotations

import asyncio
import inspect
import threading
from dataclasses import dataclass

import pytest
from anyio import to_thread

from fastapi_cachekit import CacheService, MemoryBackend, cached


@pytest.fixture
async def cache() -> CacheService:
    return CacheService(MemoryBackend())


# --- sync functions ------------------------------------------------------------------------


async def test_a_sync_function_runs_in_a_worker_thread_once(cache: CacheService) -> None:
    threads: list[int] = []

    @cached(cache)
    def load_user(user_id: int) -> dict[str, int]:
        threads.append(threading.get_ident())
        return {"id": user_id}

    assert await load_user(1) == {"id": 1}
    assert await load_user(1) == {"id": 1}
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()  # not the event loop's thread


async def test_the_event_loop_serves_while_a_sync_function_blocks(cache: CacheService) -> None:
    started, release = threading.Event(), threading.Event()

    @cached(cache)
    def blocking_query(n: int) -> int:
        started.set()
        assert release.wait(timeout=60)  # a safety net: the loop sets it at once
        return n

    call = asyncio.create_task(blocking_query(5))
    await to_thread.run_sync(started.wait)  # the loop is free while the query blocks
    release.set()
    assert await call == 5


async def test_concurrent_calls_share_one_run_of_a_sync_function(cache: CacheService) -> None:
    runs = 0
    release = threading.Event()

    @cached(cache)
    def slow(n: int) -> int:
        nonlocal runs
        runs += 1
        assert release.wait(timeout=60)
        return n

    calls = [asyncio.create_task(slow(1)) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*calls) == [1] * 10
    assert runs == 1


async def test_a_sync_function_keeps_its_signature_and_becomes_awaitable(
    cache: CacheService,
) -> None:
    def original(a: int, b: str = "x") -> int:
        """Docs."""
        return a

    wrapped = cached(cache)(original)
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert wrapped.__doc__ == "Docs."
    assert wrapped.cache_key(1) == cached(cache)(original).cache_key(1, "x")
    assert inspect.iscoroutinefunction(wrapped)


# --- condition= and unless= --------------------------------------------------------------


async def test_condition_leaves_empty_lists_out_of_the_cache(cache: CacheService) -> None:
    stock: dict[str, list[str]] = {"books": [], "games": ["chess"]}
    runs: list[str] = []

    @cached(cache, condition=bool)
    async def items(category: str) -> list[str]:
        runs.append(category)
        return list(stock[category])

    assert await items("books") == []
    stock["books"].append("dune")
    assert await items("books") == ["dune"]  # the empty answer was not kept
    assert await items("games") == await items("games") == ["chess"]
    assert runs == ["books", "books", "games"]


@dataclass
class Failure:
    reason: str


async def test_unless_leaves_errors_returned_as_values_out(cache: CacheService) -> None:
    answers: list[Failure | int] = [Failure("upstream down"), 42]

    @cached(cache, unless=lambda result: isinstance(result, Failure))
    async def quote() -> Failure | int:
        return answers.pop(0)

    assert await quote() == Failure("upstream down")
    assert await quote() == 42
    assert await quote() == 42  # stored, so the list is not read again
    assert answers == []


async def test_condition_and_unless_both_apply(cache: CacheService) -> None:
    @cached(cache, condition=lambda n: n > 0, unless=lambda n: n == 13)
    async def lucky(n: int) -> int:
        return n

    for n in (-1, 13, 7):
        await lucky(n)
    assert [await cache.exists(lucky.cache_key(n)) for n in (-1, 13, 7)] == [False, False, True]


async def test_a_refused_result_reaches_every_caller_sharing_its_run(
    cache: CacheService,
) -> None:
    runs = 0
    release = asyncio.Event()

    @cached(cache, condition=bool)
    async def search(term: str) -> list[str]:
        nonlocal runs
        runs += 1
        await release.wait()
        return []

    calls = [asyncio.create_task(search("x")) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*calls) == [[]] * 5
    assert runs == 1
    assert not await cache.exists(search.cache_key("x"))


# --- namespaces and tags from the arguments -----------------------------------------------


async def test_tags_come_from_the_arguments_they_name(cache: CacheService) -> None:
    @cached(cache, tags=lambda user_id: [f"user:{user_id}"])
    async def orders(user_id: int, limit: int = 10) -> list[int]:
        return list(range(limit))

    await orders(1)
    await orders(1, limit=2)
    await orders(2)
    assert await cache.invalidate_tags(["user:1"]) == 2
    assert await cache.exists(orders.cache_key(2))


async def test_a_namespace_comes_from_the_arguments(cache: CacheService) -> None:
    @cached(cache, namespace=lambda tenant: f"tenant-{tenant}", key_func=lambda sku: sku)
    async def price(tenant: str, sku: str) -> float:
        return 9.5

    await price("acme", "a1")
    await price("initech", "a1")
    assert await cache.get("a1", namespace="tenant-acme") == 9.5
    assert await cache.invalidate_namespace("tenant-acme") == 1
    assert await price.cache_invalidate("initech", "a1") is True
    assert not await cache.exists("a1", namespace="tenant-initech")


async def test_a_callable_taking_kwargs_gets_every_argument(cache: CacheService) -> None:
    seen: list[dict[str, object]] = []

    def tags(**arguments: object) -> list[str]:
        seen.append(arguments)
        return ["report"]

    @cached(cache, tags=tags)
    async def report(year: int, month: int = 1) -> str:
        return f"{year}-{month}"

    await report(2024)
    assert seen == [{"year": 2024, "month": 1}]


def test_a_callable_naming_an_unknown_parameter_fails_at_decoration(
    cache: CacheService,
) -> None:
    with pytest.raises(ValueError, match=r"tags= takes \['userid'\].*\(user_id\)"):

        @cached(cache, tags=lambda userid: [str(userid)])
        async def load(user_id: int) -> int:
            return user_id


async def test_a_callables_own_defaulted_parameters_keep_their_defaults(
    cache: CacheService,
) -> None:
    @cached(cache, tags=lambda user_id, prefix="user": [f"{prefix}:{user_id}"])
    async def load(user_id: int) -> int:
        return user_id

    await load(3)
    assert await cache.invalidate_tags(["user:3"]) == 1
