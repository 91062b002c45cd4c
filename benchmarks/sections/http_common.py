"""What both HTTP sections check before measuring a row."""

from __future__ import annotations

import httpx

from ..apps import BODY, CALLS, PATH, AppSpec

__all__ = ["check_hit"]


async def check_hit(client: httpx.AsyncClient, spec: AppSpec, *, in_process: bool) -> None:
    """Send two requests: the second must return the body and, for a cached row, be a hit.

    A hit shows in the row's hit header when it has one and, when the app runs in this
    process, in its endpoint not being called again.
    """
    calls = CALLS[spec.counter] if spec.counter else 0
    await client.get(PATH)
    response = await client.get(PATH)
    if response.status_code != 200 or response.content != BODY:
        raise RuntimeError(
            f"{spec.name}: expected 200 {BODY!r}, got {response.status_code} {response.content!r}"
        )
    if spec.hit_header is not None:
        header, text = spec.hit_header
        value = response.headers.get(header, "")
        if text.lower() not in value.lower():
            raise RuntimeError(f"{spec.name}: second request was not a hit ({header}: {value!r})")
    if in_process and spec.counter and CALLS[spec.counter] - calls > 1:
        raise RuntimeError(f"{spec.name}: the endpoint ran for the second request (not a hit)")
