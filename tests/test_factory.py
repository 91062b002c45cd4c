"""create_backend: the registry names every backend the settings accept, and only those."""

from __future__ import annotations

from typing import get_args

import pytest

from fastapi_cachekit import ConfigurationError, MemoryBackend
from fastapi_cachekit.factory import BACKENDS, create_backend
from fastapi_cachekit.settings import BackendName, CacheSettings


def test_registry_has_a_builder_for_every_backend_name() -> None:
    assert set(BACKENDS) == set(get_args(BackendName))


def test_memory_is_built_from_the_registry() -> None:
    assert isinstance(create_backend(CacheSettings(backend="memory")), MemoryBackend)


def test_a_name_outside_the_registry_is_a_configuration_error() -> None:
    settings = CacheSettings.model_construct(backend="memcached")
    with pytest.raises(ConfigurationError, match=r"unknown backend 'memcached'; choose one of"):
        create_backend(settings)
