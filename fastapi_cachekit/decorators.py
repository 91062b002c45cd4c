"""@cached: cache a function's results, keyed by its arguments.

The decorator works out everything it can once, at decoration time (signature, excluded
parameters, which arguments each argument callable takes, the return type's adapter); a call
only binds its arguments and builds its key, then gets, or computes and sets through the
service's single-flight `get_or_set_async`. The service itself is looked up at each call when
@cached is given an app or a function, so a test can swap it after the module was imported.
A sync function runs in a worker thread, so the event loop keeps serving while it blocks; its
cached twin is async, like every cache call.
"""

from __future__ import annotations

import functools
import inspect
import sys
import typing
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, cast, overload

from anyio import to_thread
from pydantic import TypeAdapter

from .keys import NotInKey, function_call_key, not_in_key
from .refresh import RefreshAhead, check_window, refresh_seconds
from .service import CacheService
from .ttl import DEFAULT_TTL, TTL, DefaultTTL, ttl_seconds

__all__ = ["AppWithState", "CacheSource", "CachedFunction", "Decorator", "NotInKey", "cached"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
T = TypeVar("T")


class AppWithState(Protocol):
    """A Starlette or FastAPI app: `setup_cache` registers its service on `app.state`."""

    state: Any


CacheSource = CacheService | AppWithState | Callable[[], CacheService]
"""Where @cached finds its service: a service, an app's current service, or a function."""

Predicate = Callable[[Any], object]
"""A test of a function's result: `condition=` stores it when true, `unless=` when false."""


class CachedFunction(Protocol[P, R_co]):
    """A function whose results are cached; it keeps the original parameters and is async."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R_co]: ...

    def cache_invalidate(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, bool]:
        """Remove the cached result of this call; True if one was removed."""
        ...

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key (within the namespace) under which this call's result is cached."""
        ...


class Decorator(Protocol):
    """What `cached(...)` returns: it turns an async or a sync function into a CachedFunction."""

    @overload
    def __call__(self, func: Callable[P, Coroutine[Any, Any, R]]) -> CachedFunction[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, R]) -> CachedFunction[P, R]: ...


class _ArgumentsCall(Generic[T]):
    """A callable given the arguments of a call that it names, by name (all of them when it
    takes **kwargs): `tags=lambda user_id: ...` on `def load(user_id, session)`."""

    def __init__(
        self, option: str, call: Callable[..., T], signature: inspect.Signature, owner: str
    ) -> None:
        self._call = call
        self._names: tuple[str, ...] | None = None  # None: pass every argument
        try:
            parameters = inspect.signature(call).parameters.values()
        except (TypeError, ValueError):  # a builtin without a signature: give it everything
            return
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            return
        named = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = [p for p in named if p.name not in signature.parameters]
        if any(p.default is p.empty for p in unknown):
            raise ValueError(
                f"{option}= takes {[p.name for p in unknown]}, which are not parameters of "
                f"{owner}; name only parameters of {owner} ({', '.join(signature.parameters)}),"
                " or take **kwargs"
            )
        self._names = tuple(p.name for p in named if p not in unknown)

    def __call__(self, arguments: dict[str, Any]) -> T:
        if self._names is None:
            return self._call(**arguments)
        return self._call(**{name: arguments[name] for name in self._names})


class _NotStored(Exception):
    """Carries a result its predicate refused out of the shared fill: every caller waiting
    on the fill gets the value, and the service stores nothing (a failed fill is not kept)."""

    def __init__(self, value: Any) -> None:
        super().__init__("result refused by condition= or unless=")
        self.value = value


class _Plan:
    """What @cached works out once per function."""

    def __init__(
        self,
        func: Callable[..., Any],
        key_func: Callable[..., str] | None,
        exclude: Iterable[str],
        scope: dict[str, Any],
    ) -> None:
        self.func = func
        self.is_async = _is_async(func)
        self.signature = inspect.signature(func)
        self.key_func = None if key_func is None else self.arguments_call("key_func", key_func)
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

    def arguments_call(self, option: str, call: Callable[..., T]) -> _ArgumentsCall[T]:
        return _ArgumentsCall(option, call, self.signature, self.func.__qualname__)

    def _resolve(self) -> frozenset[str]:
        hints = typing.get_type_hints(self.func, localns=self._scope, include_extras=True)
        self._adapter = _return_adapter(hints.get("return", Any))
        self._exclude = self._explicit | not_in_key(hints)
        return self._exclude

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults included."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments

    def key(self, arguments: dict[str, Any]) -> str:
        if self.key_func is not None:
            return self.key_func(arguments)
        exclude = self._exclude if self._exclude is not None else self._resolve()
        return function_call_key(self.func, arguments, exclude)

    def compute(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Awaitable[Any]:
        """The function's result: awaited, or from a worker thread for a sync function."""
        if self.is_async:
            return cast(Awaitable[Any], self.func(*args, **kwargs))
        return to_thread.run_sync(functools.partial(self.func, *args, **kwargs))

    def revive(self, value: Any) -> Any:
        """Turn a cached value (its JSON form) back into the declared return type."""
        if self._exclude is None:
            self._resolve()
        return value if self._adapter is None else self._adapter.validate_python(value)


def cached(
    cache_service: CacheSource,
    ttl: TTL | DefaultTTL = DEFAULT_TTL,
    key_func: Callable[..., str] | None = None,
    namespace: str | Callable[..., str] | None = None,
    tags: Iterable[str] | Callable[..., Iterable[str]] | None = None,
    *,
    exclude: Iterable[str] = (),
    condition: Predicate | None = None,
    unless: Predicate | None = None,
    refresh_ahead: RefreshAhead = None,
) -> Decorator:
    """Cache the results of a function in `cache_service`.

    `cache_service` is a CacheService, used for every call; or an app (FastAPI, Starlette),
    whose current service (`setup_cache`) each call looks up, so `setup_cache(app, other)`,
    in a test say, takes effect at once; or a function returning the service to use, called
    at each call.

    An async function stays async; a sync function (`def`) runs in a worker thread and its
    cached version is async: `await get_user(1)`.

    The key is `key_func(...)` when given (used verbatim; the namespace still applies), else
    the function's module, qualified name and arguments. Parameters named in `exclude`, or
    annotated `Annotated[T, NotInKey]`, are left out of the key. `key_func`, and `namespace`
    and `tags` when they are callables, are called with the arguments they name, by name
    (`tags=lambda user_id: [f"user:{user_id}"]`), or all of them if they take `**kwargs`.

    A result is stored only if `condition(result)` is true (when given) and `unless(result)`
    is false (when given); a refused result is still returned, and callers sharing its
    computation get it too. Results come back as the function's return annotation (a
    pydantic model as the model).

    `refresh_ahead` (seconds or a timedelta, shorter than the TTL): a call that finds a result
    with that long or less left returns it and recomputes it in the background, once, so that
    callers do not wait for the function when the result expires (see the early refresh guide).
    A window that cannot work is refused here, when `ttl` is given or `cache_service` is a
    CacheService (then also for its default TTL and its backend); with an app or a function
    as the source, the service is known only at a call, so a window too long for its default
    TTL, or a backend that cannot tell how long an entry has left, raises at each call.
    """
    if not isinstance(ttl, DefaultTTL):
        ttl = ttl_seconds(ttl)  # a bad TTL is refused where @cached is written
    service_of = _service_source(cache_service)
    ahead = refresh_seconds(refresh_ahead)  # as is a bad window
    if ahead is not None and isinstance(cache_service, CacheService):
        cache_service.check_refresh_ahead(ahead, ttl)  # with its default TTL and backend
    elif ahead is not None and not isinstance(ttl, DefaultTTL):
        check_window(ahead, ttl)
    scope = dict(sys._getframe(1).f_locals)  # names visible where @cached is written

    def decorate(func: Callable[P, Any]) -> CachedFunction[P, Any]:
        plan = _Plan(func, key_func, exclude, scope)
        namespace_of = _per_call(plan, "namespace", namespace)
        tag_source: Iterable[str] | Callable[..., Iterable[str]] | None = (
            tags if tags is None or callable(tags) else list(tags)  # a generator, read once
        )
        tags_of = _per_call(plan, "tags", tag_source)
        refuses = _refusal(condition, unless)

        async def fill(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            result = await plan.compute(args, kwargs)
            if refuses is not None and refuses(result):
                raise _NotStored(result)
            return result

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            arguments = plan.bind(args, kwargs)
            try:
                value = await service_of().get_or_set_async(
                    plan.key(arguments),
                    lambda: fill(args, kwargs),
                    ttl=ttl,
                    namespace=namespace_of(arguments),
                    tags=tags_of(arguments),
                    refresh_ahead=ahead,
                )
            except _NotStored as refused:
                return refused.value
            return plan.revive(value)

        async def cache_invalidate(*args: P.args, **kwargs: P.kwargs) -> bool:
            arguments = plan.bind(args, kwargs)
            key, label = plan.key(arguments), namespace_of(arguments)
            return await service_of().delete(key, namespace=label)

        def cache_key(*args: P.args, **kwargs: P.kwargs) -> str:
            return plan.key(plan.bind(args, kwargs))

        wrapper.__dict__.update(cache_invalidate=cache_invalidate, cache_key=cache_key)
        return cast(CachedFunction[P, Any], wrapper)

    return cast(Decorator, decorate)


def _service_source(source: CacheSource) -> Callable[[], CacheService]:
    """A function giving the service a call uses: `source` itself, or looked up per call."""
    if isinstance(source, CacheService):
        return lambda: source
    if hasattr(source, "state"):
        # Imported here: an app's service is wiring that lives with the FastAPI layer.
        from .fastapi.dependencies import cache_for_app

        return functools.partial(cache_for_app, cast(Any, source))
    if callable(source):
        return source
    raise TypeError(
        f"@cached takes a CacheService, an app set up with setup_cache(app), or a function "
        f"returning a CacheService; got {type(source).__name__}"
    )


def _per_call(
    plan: _Plan, option: str, given: T | Callable[..., T]
) -> Callable[[dict[str, Any]], T]:
    """`given` as a function of a call's arguments: computed from them, or a constant."""
    if callable(given):
        return plan.arguments_call(option, given)
    return lambda arguments: given


def _refusal(condition: Predicate | None, unless: Predicate | None) -> Predicate | None:
    """A test that is true for a result that must not be stored; None if all are stored."""
    if condition is None and unless is None:
        return None
    return lambda result: (
        (condition is not None and not condition(result))
        or (unless is not None and bool(unless(result)))
    )


def _is_async(func: Callable[..., Any]) -> bool:
    call = getattr(func, "__call__", None)  # noqa: B004 (a callable object's async __call__)
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(call)


def _return_adapter(hint: Any) -> TypeAdapter[Any] | None:
    if hint is Any or hint is object:
        return None
    return TypeAdapter(hint)
