"""HTTP tests marked with `http_backend` run on the memory, redis and hybrid backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.backend_kinds import HTTP_KINDS, backend_factory, new_backend


@pytest.fixture(params=HTTP_KINDS)
async def http_backend(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    kind = str(request.param)
    default = new_backend.factory
    new_backend.factory = backend_factory(kind, request)
    yield kind
    new_backend.factory = default
    built, new_backend.built = new_backend.built, []
    for backend in built:
        await backend.close()
