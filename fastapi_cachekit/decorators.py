"""@cached: cache an async function's results, keyed by its arguments.

The decorator works out everything it can once, at decoration time (signature, excluded
parameters, the return type's adapter); a call only builds its key, then gets, or computes
and sets through the service's single-flight `get_or_set_async`.
"""

from __future__ import annotations

import functools
import inspect
import sys
import typing
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, cast

from pydantic import TypeAdapter

from .keys import NotInKey, function_call_key, not_in_key
from .service import CacheService
from .ttl import DEFAULT_TTL, TTL, DefaultTTL, ttl_seconds

__all__ = ["CachedFunction", "NotInKey", "cached"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class CachedFunction(Protocol[P, R_co]):
    """An async function whose results are cached; it keeps the original signature."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R_co]: ...

    def cache_invalidate(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[bool]:
        """Remove the cached result of this call; True if one was removed."""
        ...

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key (within the namespace) under which this call's result is cached."""
        ...


class _Plan(Generic[R]):
    """What @cached works out once per function."""

    def __init__(
        self,
        func: Callable[..., Awaitable[R]],
        key_func: Callable[..., str] | None,
        exclude: Iterable[str],
        scope: dict[str, Any],
    ) -> None:
        self.func = func
        self.signature = inspect.signature(func)
        self.key_func = key_func
        self._explicit = frozenset(exclude)
        unknown = self._explicit - set(self.signature.parameters)
        if unknown:
            raise ValueError(
                f"exclude names {sorted(unknown)} are not parameters of {func.__qualname__}"
            )
        self._scope = scope
        # Resolved at the first call, so annotations may name classes defined later.
        self._exclude: frozenset[str] | None = None
        self._adapter: TypeAdapter[Any] | None = None

    def _resolve(self) -> frozenset[str]:
        hints = typing.get_type_hints(self.func, localns=self._scope, include_extras=True)
        self._adapter = _return_adapter(hints.get("return", Any))
        self._exclude = self._explicit | not_in_key(hints)
        return self._exclude

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        if self.key_func is not None:
            return self.key_func(**bound.arguments)
        exclude = self._exclude if self._exclude is not None else self._resolve()
        return function_call_key(self.func, bound.arguments, exclude)

    def revive(self, value: Any) -> Any:
        """Turn a cached value (its JSON form) back into the declared return type."""
        if self._exclude is None:
            self._resolve()
        return value if self._adapter is None else self._adapter.validate_python(value)


def cached(
    cache_service: CacheService,
    ttl: TTL | DefaultTTL = DEFAULT_TTL,
    key_func: Callable[..., str] | None = None,
    namespace: str | None = None,
    tags: Iterable[str] | None = None,
    *,
    exclude: Iterable[str] = (),
) -> Callable[[Callable[P, Awaitable[R]]], CachedFunction[P, R]]:
    """Cache the results of an async function in `cache_service`.

    The key is `key_func(**arguments)` when given (used verbatim; the namespace still
    applies), else the function's module, qualified name and arguments. Parameters named in
    `exclude`, or annotated `Annotated[T, NotInKey]`, are left out of the key. Results come
    back as the function's return annotation (a pydantic model as the model).
    """
    if not isinstance(ttl, DefaultTTL):
        ttl = ttl_seconds(ttl)  # a bad TTL is refused where @cached is written
    tag_list = list(tags) if tags is not None else None
    scope = dict(sys._getframe(1).f_locals)  # names visible where @cached is written

    def decorate(func: Callable[P, Awaitable[R]]) -> CachedFunction[P, R]:
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"@cached needs an async function; {func.__qualname__} is not")
        plan = _Plan(func, key_func, exclude, scope)

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            value = await cache_service.get_or_set_async(
                plan.key(args, kwargs),
                lambda: func(*args, **kwargs),
                ttl=ttl,
                namespace=namespace,
                tags=tag_list,
            )
            return cast(R, plan.revive(value))

        async def cache_invalidate(*args: P.args, **kwargs: P.kwargs) -> bool:
            return await cache_service.delete(plan.key(args, kwargs), namespace=namespace)

        def cache_key(*args: P.args, **kwargs: P.kwargs) -> str:
            return plan.key(args, kwargs)

        wrapper.__dict__.update(cache_invalidate=cache_invalidate, cache_key=cache_key)
        return cast(CachedFunction[P, R], wrapper)

    return decorate


def _return_adapter(hint: Any) -> TypeAdapter[Any] | None:
    if hint is Any or hint is object:
        return None
    return TypeAdapter(hint)
