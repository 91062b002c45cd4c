"""@cached: keys from arguments, key_func, namespaces, tags, types and invalidation."""

from __future__ import annotations

import inspect
import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated

import pytest
from pydantic import BaseModel

from fastapi_cachekit import (
    CacheKey,
    CacheService,
    InvalidTTLError,
    KeyBuildError,
    MemoryBackend,
    NotInKey,
    cached,
)


@pytest.fixture
async def cache() -> CacheService:
    return CacheService(MemoryBackend())


class Profile(BaseModel):
    id: uuid.UUID
    created: datetime
    tags: list[str]


async def test_second_call_is_served_from_the_cache(cache: CacheService) -> None:
    calls = []

    @cached(cache, ttl=timedelta(minutes=5))
    async def get_expensive_data(user_id: int) -> dict[str, object]:
        calls.append(user_id)
        return {"user_id": user_id, "data": "expensive result"}

    first = await get_expensive_data(123)
    second = await get_expensive_data(123)
    await get_expensive_data(124)
    assert first == second == {"user_id": 123, "data": "expensive result"}
    assert calls == [123, 124]


async def test_key_func_gets_bound_arguments_with_defaults(cache: CacheService) -> None:
    @cached(
        cache,
        ttl=timedelta(hours=1),
        key_func=lambda user_id, include_details: f"user-{user_id}-{include_details}",
    )
    async def get_user_data(user_id: int, include_details: bool = False) -> dict[str, int]:
        return {"id": user_id}

    await get_user_data(1)
    assert await cache.get("user-1-False") == {"id": 1}
    await get_user_data(2, include_details=True)
    assert await cache.exists("user-2-True")


async def test_namespace_and_tags_apply(cache: CacheService) -> None:
    @cached(cache, namespace="users", tags=["users"], key_func=lambda user_id: str(user_id))
    async def load(user_id: int) -> int:
        return user_id

    await load(7)
    assert await cache.get("7", namespace="users") == 7
    assert await cache.invalidate_tags(["users"]) == 1


async def test_return_annotation_revives_pydantic_models(cache: CacheService) -> None:
    @cached(cache)
    async def profile(user_id: int) -> Profile:
        return Profile(id=uuid.UUID(int=user_id), created=datetime(2024, 1, 1), tags=["a"])

    miss = await profile(1)
    hit = await profile(1)
    assert isinstance(hit, Profile)
    assert hit == miss


async def test_model_defined_in_a_function_with_postponed_annotations(
    cache: CacheService,
) -> None:
    class Local(BaseModel):
        when: datetime

    @cached(cache)
    async def stamp() -> Local:
        return Local(when=datetime(2024, 1, 1, tzinfo=timezone.utc))

    await stamp()
    hit = await stamp()
    assert isinstance(hit, Local)
    assert hit.when == datetime(2024, 1, 1, tzinfo=timezone.utc)


async def test_container_annotations_revive_their_items(cache: CacheService) -> None:
    @cached(cache)
    async def ids() -> list[uuid.UUID]:
        return [uuid.UUID(int=1)]

    await ids()
    assert await ids() == [uuid.UUID(int=1)]


async def test_none_results_are_cached(cache: CacheService) -> None:
    calls = 0

    @cached(cache)
    async def find(name: str) -> None:
        nonlocal calls
        calls += 1

    await find("x")
    await find("x")
    assert calls == 1


async def test_cache_invalidate_removes_one_call(cache: CacheService) -> None:
    calls: list[int] = []

    @cached(cache)
    async def square(n: int) -> int:
        calls.append(n)
        return n * n

    await square(2)
    await square(3)
    assert await square.cache_invalidate(2) is True
    await square(2)
    await square(3)
    assert calls == [2, 3, 2]


async def test_wrapper_keeps_name_docstring_signature(cache: CacheService) -> None:
    async def original(a: int, b: str = "x") -> int:
        """Docs."""
        return a

    wrapped = cached(cache)(original)
    assert wrapped.__name__ == "original"
    assert wrapped.__doc__ == "Docs."
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert inspect.iscoroutinefunction(wrapped)


class Session:
    """Not data: a stand-in for a database session."""


async def test_excluded_parameters_stay_out_of_the_key(cache: CacheService) -> None:
    calls = 0

    @cached(cache, exclude=["session"])
    async def by_exclude(user_id: int, session: Session) -> int:
        nonlocal calls
        calls += 1
        return user_id

    @cached(cache)
    async def by_marker(user_id: int, session: Annotated[Session, NotInKey]) -> int:
        nonlocal calls
        calls += 1
        return user_id

    for fn in (by_exclude, by_marker):
        await fn(1, Session())
        await fn(1, Session())
    assert calls == 2


async def load_for_user(user_id: int, session: Annotated[Session, NotInKey]) -> int:
    return user_id


async def test_cache_key_from_function_call_leaves_not_in_key_out(cache: CacheService) -> None:
    session = Session()
    key = CacheKey.from_function_call(load_for_user, (7, session))
    assert key.key == cached(cache)(load_for_user).cache_key(7, session)
    assert "session" not in key.key


async def test_unserializable_argument_is_a_clear_error_at_call_time(
    cache: CacheService,
) -> None:
    @cached(cache)
    async def load(user_id: int, session: Session) -> int:
        return user_id

    with pytest.raises(KeyBuildError, match=r"'session'.*exclude=\['session'\]"):
        await load(1, Session())


def test_unknown_exclude_name_fails_at_decoration(cache: CacheService) -> None:
    with pytest.raises(ValueError, match="not parameters"):

        @cached(cache, exclude=["nope"])
        async def load(a: int) -> int:
            return a


@pytest.mark.parametrize("ttl", [0, 10**400, "60"])
def test_a_bad_ttl_fails_at_decoration(cache: CacheService, ttl: object) -> None:
    with pytest.raises(InvalidTTLError, match="ttl"):
        cached(cache, ttl=ttl)  # type: ignore[arg-type]


async def test_same_arguments_share_one_run(cache: CacheService) -> None:
    import asyncio

    calls = 0
    release = asyncio.Event()

    @cached(cache)
    async def slow(n: int) -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return n

    tasks = [asyncio.create_task(slow(1)) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*tasks) == [1] * 10
    assert calls == 1
