"""The service's arguments, checked and put in storage terms: its defaults applied.

Bad input raises here, before anything is read or written, with a message that says what
to pass instead; the rules of the text itself (keys, namespaces, tags) are in `keys.py`, the
TTL's in `ttl.py`.
"""

from __future__ import annotations

from pydantic import SecretStr

from .errors import ConfigurationError
from .keys import check_key, check_namespace, is_plain, storage_key
from .settings import check_admin_token
from .ttl import TTL, DefaultTTL, ttl_seconds

__all__ = ["Arguments", "checked_admin_token", "not_a_mapping", "not_callable"]


class Arguments:
    """A service's default TTL and default namespace, applied to each call's arguments."""

    def __init__(self, default_ttl: TTL, default_namespace: str | None) -> None:
        self.default_ttl = ttl_seconds(default_ttl)
        self.default_namespace = (
            None if default_namespace is None else check_namespace(default_namespace)
        )

    def key(self, key: str, namespace: str | None) -> str:
        """The checked key as the backend stores it (`keys.storage_key`)."""
        if namespace is None:
            if self.default_namespace is None and is_plain(key):
                return key  # most keys: storage_key(key, None) is the key
            namespace = self.default_namespace
        else:
            namespace = check_namespace(namespace)
        return storage_key(check_key(key), namespace)

    def namespace(self, namespace: str | None) -> str | None:
        """The checked namespace, or the default one."""
        return self.default_namespace if namespace is None else check_namespace(namespace)

    def ttl(self, ttl: TTL | DefaultTTL) -> float | None:
        """The TTL in seconds (None: never expires), or the default one."""
        return self.default_ttl if isinstance(ttl, DefaultTTL) else ttl_seconds(ttl)


def checked_admin_token(token: str | SecretStr | None) -> SecretStr | None:
    """The `admin_token` argument as a secret, refused (ConfigurationError) if it is weak."""
    if token is None:
        return None
    secret = token if isinstance(token, SecretStr) else SecretStr(token)
    try:
        check_admin_token(secret.get_secret_value())
    except ValueError as exc:
        raise ConfigurationError(f"admin_token (CACHEKIT_ADMIN_TOKEN): {exc}") from None
    return secret


def not_callable(value_factory: object) -> TypeError:
    """The error for a `value_factory` that cannot be called (a value passed in its place)."""
    return TypeError(
        f"value_factory must be callable, got {type(value_factory).__name__}; "
        "wrap a value in a lambda: value_factory=lambda: value"
    )


def not_a_mapping(items: object) -> TypeError:
    """The error for `set_many` items that are not a mapping of key -> value."""
    return TypeError(
        f"items must be a mapping of key -> value, got {type(items).__name__}; "
        "pass a dict, e.g. set_many({'user:1': alice, 'user:2': bob})"
    )
