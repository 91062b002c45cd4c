"""CacheSettings and create_cache: the spec's table, env variables, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastapi_cachekit import CacheSettings, ConfigurationError, MemoryBackend, create_cache
from fastapi_cachekit.backends.hybrid import HybridBackend


def test_defaults_match_the_spec_table(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = CacheSettings()
    assert settings.backend == "memory"
    assert settings.default_ttl_seconds == 3600
    assert settings.default_namespace is None
    assert settings.redis_url is None
    assert settings.max_memory_items == 1000
    assert settings.enable_stats is True
    assert settings.key_prefix == "cachekit"


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_DEFAULT_TTL_SECONDS", "60")
    monkeypatch.setenv("CACHEKIT_DEFAULT_NAMESPACE", "myapp")
    monkeypatch.setenv("CACHEKIT_MAX_MEMORY_ITEMS", "5")
    settings = CacheSettings()
    assert (settings.default_ttl_seconds, settings.default_namespace) == (60, "myapp")
    assert settings.max_memory_items == 5


def test_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CACHEKIT_DEFAULT_TTL_SECONDS=42\n")
    assert CacheSettings().default_ttl_seconds == 42


async def test_create_cache_with_the_spec_arguments() -> None:
    cache = create_cache(backend="memory", max_memory_items=2, default_ttl_seconds=3600)
    assert isinstance(cache.backend, MemoryBackend)
    assert cache.backend.max_items == 2
    assert cache.default_ttl == 3600
    await cache.close()


async def test_create_cache_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_DEFAULT_NAMESPACE", "envns")
    cache = create_cache()
    await cache.set("k", 1)
    assert await cache.get("k", namespace="envns") == 1
    await cache.close()


async def test_overrides_win_over_given_settings() -> None:
    cache = create_cache(CacheSettings(default_ttl_seconds=10), default_ttl_seconds=20)
    assert cache.default_ttl == 20
    await cache.close()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"default_ttl_seconds": 0}, "default_ttl_seconds.*CACHEKIT_DEFAULT_TTL_SECONDS"),
        ({"default_ttl_seconds": -5}, "greater than 0"),
        ({"max_memory_items": 0}, "max_memory_items"),
        ({"backend": "memcached"}, "backend.*'memory', 'redis' or 'hybrid'"),
        ({"backend": "redis"}, "needs redis_url.*CACHEKIT_REDIS_URL"),
        ({"backend": "hybrid"}, "needs redis_url"),
        ({"serializer": "pickle"}, "signing_key.*CACHEKIT_SIGNING_KEY"),
        ({"serializer": "pickle", "signing_key": "short"}, "at least 16 characters"),
        ({"max_memory_item": 10}, "unknown cache setting 'max_memory_item'.*'max_memory_items'"),
        ({"flavour": "x"}, "unknown cache setting 'flavour'$"),
    ],
)
def test_invalid_configuration_names_the_setting_and_fix(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        create_cache(**overrides)


def test_invalid_environment_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_MAX_MEMORY_ITEMS", "lots")
    with pytest.raises(ConfigurationError, match="max_memory_items"):
        create_cache()


async def test_the_byte_bound_reaches_the_memory_backend_and_the_hybrid_l1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert CacheSettings().max_memory_bytes == 256 * 1024 * 1024
    monkeypatch.setenv("CACHEKIT_MAX_MEMORY_BYTES", "5000000")
    memory = create_cache()
    assert isinstance(memory.backend, MemoryBackend)
    assert memory.backend.max_memory_bytes == 5_000_000
    hybrid = create_cache(backend="hybrid", redis_url="redis://127.0.0.1:1/0")  # never dialled
    assert isinstance(hybrid.backend, HybridBackend)
    assert hybrid.backend.l1.max_memory_bytes == 5_000_000
    unbounded = create_cache(max_memory_bytes=None)
    assert isinstance(unbounded.backend, MemoryBackend)
    assert unbounded.backend.max_memory_bytes is None
    with pytest.raises(ConfigurationError, match="CACHEKIT_MAX_MEMORY_BYTES"):
        create_cache(max_memory_bytes=0)
    for cache in (memory, hybrid, unbounded):
        await cache.close()
