"""@cached_route against hostile requests: every declared input is in the key (a request that
would fail validation still fails), the key is an unambiguous encoding of scheme, host, path
and query, the endpoint's Vary is honoured, and variants per URL are capped."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import Body, Cookie, Depends, FastAPI, Header, HTTPException, Request, Response
from pydantic import BaseModel

from fastapi_cachekit import CacheService
from fastapi_cachekit.errors import ConfigurationError
from fastapi_cachekit.fastapi.routes import cached_route
from tests.backend_kinds import new_backend
from tests.clock import FakeClock

pytestmark = pytest.mark.usefixtures("http_backend")


@pytest.fixture
def cache() -> CacheService:
    return CacheService(new_backend(FakeClock()))


def client_for(app: FastAPI, base_url: str = "http://test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


def check_token(token: str) -> None:
    if token != "secret":
        raise HTTPException(status_code=403, detail="bad token")


async def test_a_header_parameter_is_in_the_key_and_validation_still_runs(
    cache: CacheService,
) -> None:
    app = FastAPI()

    @app.get("/protected")
    @cached_route(cache, ttl=60)
    async def protected(x_token: str = Header()) -> dict[str, str]:
        check_token(x_token)
        return {"data": "confidential"}

    async with client_for(app) as client:
        valid = await client.get("/protected", headers={"x-token": "secret"})
        cached = await client.get("/protected", headers={"x-token": "secret"})
        missing = await client.get("/protected")
        wrong = await client.get("/protected", headers={"x-token": "guess"})
    assert valid.status_code == cached.status_code == 200
    assert missing.status_code == 422
    assert wrong.status_code == 403


def token(x_token: str = Header()) -> str:
    check_token(x_token)
    return x_token


async def test_a_dependencys_header_and_a_cookie_are_in_the_key(cache: CacheService) -> None:
    app = FastAPI()

    @app.get("/dep")
    @cached_route(cache, ttl=60, cache_private_requests=True)
    async def dep(
        _: Annotated[str, Depends(token)], theme: str | None = Cookie(None)
    ) -> dict[str, str | None]:
        return {"theme": theme}

    async with client_for(app) as client:
        dark = await client.get("/dep", headers={"x-token": "secret", "cookie": "theme=dark"})
        light = await client.get("/dep", headers={"x-token": "secret", "cookie": "theme=light"})
        wrong = await client.get("/dep", headers={"x-token": "guess", "cookie": "theme=dark"})
    assert dark.json() == {"theme": "dark"}
    assert light.json() == {"theme": "light"}
    assert wrong.status_code == 403


class Filters(BaseModel):
    x_tenant: str


def test_inputs_a_key_cannot_cover_are_refused_at_decoration() -> None:
    with pytest.raises(ConfigurationError, match=r"'payload'.*body"):

        @cached_route(ttl=60)
        async def with_body(payload: dict[str, int] = Body()) -> None: ...

    with pytest.raises(ConfigurationError, match=r"'filters'.*model"):

        @cached_route(ttl=60)
        async def with_model(filters: Annotated[Filters, Header()]) -> None: ...


async def test_the_host_is_in_the_key(cache: CacheService) -> None:
    app = FastAPI()

    @app.get("/links", name="links")
    @cached_route(cache, ttl=60)
    async def links(request: Request) -> dict[str, str]:
        return {"self": str(request.url_for("links"))}

    async with client_for(app, "http://evil.example") as evil:
        poisoned = await evil.get("/links")
    async with client_for(app, "https://test") as client:
        plain = await client.get("/links")
    assert poisoned.json() == {"self": "http://evil.example/links"}
    assert plain.json() == {"self": "https://test/links"}


async def test_path_parameters_cannot_collide(cache: CacheService) -> None:
    app = FastAPI()

    @app.get("/two/{a}/{b}")
    @cached_route(cache, ttl=60)
    async def two(a: str, b: str) -> dict[str, str]:
        return {"a": a, "b": b}

    async with client_for(app) as client:
        first = await client.get("/two/1&b=2/3")
        second = await client.get("/two/1/2&b=3")
    assert first.json() == {"a": "1&b=2", "b": "3"}
    assert second.json() == {"a": "1", "b": "2&b=3"}


async def test_the_endpoints_vary_is_honoured(cache: CacheService) -> None:
    app = FastAPI()
    calls: list[str] = []

    @app.get("/hello")
    @cached_route(cache, ttl=60)
    async def hello(request: Request, response: Response) -> str:
        language = request.headers.get("accept-language", "en")
        calls.append(language)
        response.headers["vary"] = "Accept-Language"
        return {"fr": "bonjour", "de": "hallo"}.get(language, "hello")

    async with client_for(app) as client:
        fr = await client.get("/hello", headers={"accept-language": "fr"})
        de = await client.get("/hello", headers={"accept-language": "de"})
        fr_again = await client.get("/hello", headers={"accept-language": "fr"})
    assert (fr.json(), de.json(), fr_again.json()) == ("bonjour", "hallo", "bonjour")
    assert calls == ["fr", "de"]


async def test_vary_star_is_not_stored(cache: CacheService) -> None:
    app = FastAPI()
    calls: list[int] = []

    @app.get("/any")
    @cached_route(cache, ttl=60)
    async def anything(response: Response) -> int:
        calls.append(1)
        response.headers["vary"] = "*"
        return len(calls)

    async with client_for(app) as client:
        answers = [(await client.get("/any")).json() for _ in range(2)]
    assert answers == [1, 2]


async def test_variants_per_url_are_capped(cache: CacheService) -> None:
    app = FastAPI()
    calls: list[str] = []

    @app.get("/lang")
    @cached_route(cache, ttl=60, max_variants=2)
    async def lang(request: Request, response: Response) -> str:
        calls.append(request.headers["accept-language"])
        response.headers["vary"] = "Accept-Language"
        return calls[-1]

    async with client_for(app) as client:
        for language in ("a", "b", "c", "b", "c", "a"):
            await client.get("/lang", headers={"accept-language": language})
    assert calls == ["a", "b", "c", "a"]  # "a" was dropped when "c" was stored


async def test_a_response_is_kept_for_its_freshness_when_shorter_than_ttl() -> None:
    clock = FakeClock()
    cache = CacheService(new_backend(clock))
    app = FastAPI()
    calls: list[int] = []

    @app.get("/short")
    @cached_route(cache, ttl=60, clock=clock)
    async def short(response: Response) -> int:
        calls.append(1)
        response.headers["cache-control"] = "max-age=10"
        return len(calls)

    async with client_for(app) as client:
        first = (await client.get("/short")).json()
        clock.advance(9)
        within = (await client.get("/short")).json()
        clock.advance(2)
        after = (await client.get("/short")).json()
    assert (first, within, after) == (1, 1, 2)


def test_max_variants_must_be_a_positive_int() -> None:
    with pytest.raises(ConfigurationError, match="max_variants"):
        cached_route(ttl=60, max_variants=0)


async def test_a_forwarded_host_is_keyed(cache: CacheService) -> None:
    app = FastAPI()

    @app.get("/page")
    @cached_route(cache, ttl=60)
    async def page(request: Request) -> str:
        return request.headers.get("x-forwarded-host", request.headers["host"])

    async with client_for(app) as client:
        poisoned = await client.get("/page", headers={"x-forwarded-host": "evil.example"})
        plain = await client.get("/page")
    assert poisoned.json() == "evil.example"
    assert plain.json() == "test"


async def test_a_key_func_route_validates_every_request(cache: CacheService) -> None:
    """A key_func may leave inputs out of the key, so a hit must not skip FastAPI's
    validation of them: one key, a valid and an invalid request."""
    app = FastAPI()

    @app.get("/items")
    @cached_route(cache, ttl=60, key_func=lambda request: "items")
    async def items(limit: int) -> int:
        return limit

    async with client_for(app) as client:
        first = await client.get("/items?limit=1")
        second = await client.get("/items?limit=1")
        invalid = await client.get("/items?limit=lots")
    assert (first.json(), second.json()) == (1, 1)
    assert invalid.status_code == 422
