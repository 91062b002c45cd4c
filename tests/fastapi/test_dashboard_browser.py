"""The admin dashboard as an operator sees it: a real headless Chromium against a real uvicorn.

Needs Debian's `chromium` (installed by .ci/run) and the `playwright` package (the dev extra),
which drives that browser through `executable_path`: no browser is downloaded. Without either
the test is skipped, except under CI=true, where it fails.

The page's polling timer runs on Playwright's fake clock and the server's sampling on a
FakeClock, so "five seconds later" costs nothing. With CACHEKIT_SAVE_SCREENSHOT=1 the run
saves the page to docs/img/dashboard.png (the Monitoring guide's picture); otherwise nothing
tracked is written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Cookie, Depends, FastAPI, HTTPException

from fastapi_cachekit import CacheService
from fastapi_cachekit.backends.memory import MemoryBackend
from fastapi_cachekit.fastapi.admin import admin_router
from fastapi_cachekit.fastapi.dashboard import Dashboard
from fastapi_cachekit.fastapi.dependencies import setup_cache
from tests.clock import FakeClock
from tests.fastapi.uvicorn_task import uvicorn_in_task

TOKEN = "browser-token-0123456789abcdef"
SESSION = "admin-session-id"
HOSTILE = "<img src=x onerror=\"document.title='owned'\">"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run here)", pytrace=False)
    pytest.skip(reason)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _unavailable("no chromium on PATH (Debian: apt-get install chromium)")
    assert path is not None
    return path


def session_admin(session: str = Cookie("")) -> None:
    if session != SESSION:
        raise HTTPException(status_code=403, detail="log in as an admin first")


def make_app(clock: FakeClock) -> tuple[FastAPI, CacheService]:
    app = FastAPI()
    cache = CacheService(MemoryBackend(), admin_token=TOKEN)
    setup_cache(app, cache)
    app.include_router(admin_router(cache=cache, dashboard=Dashboard(clock=clock)))
    # The app's cache (it has no token of its own) behind the app's own auth: a session cookie.
    app.include_router(admin_router(prefix="/ops/cache", dependencies=[Depends(session_admin)]))

    @app.get("/{kind}/{item_id}")
    async def item(kind: str, item_id: int) -> dict[str, Any]:
        async def load() -> dict[str, Any]:
            return {"kind": kind, "id": item_id}

        return await cache.get_or_set_async(  # type: ignore[no-any-return]
            f"{kind}:{item_id}", load, namespace=kind, tags=[kind]
        )

    return app, cache


@pytest.fixture
async def served(clock: FakeClock) -> AsyncIterator[tuple[str, CacheService]]:
    app, cache = make_app(clock)
    try:
        async with uvicorn_in_task(app, ws="none") as url:
            yield url, cache
    finally:
        await cache.close()


@pytest.fixture(autouse=True)
def no_token_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CACHEKIT_ADMIN_TOKEN", raising=False)  # the /ops router has none


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_an_operator_uses_the_dashboard_in_chromium(
    served: tuple[str, CacheService], clock: FakeClock
) -> None:
    chromium = _chromium()
    try:
        from playwright.async_api import async_playwright, expect
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright: the dev extra)")
    base, cache = served
    await cache.set("profile", 1, namespace="evil", tags=[HOSTILE])

    async with (
        httpx.AsyncClient(base_url=base) as http,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        page = await browser.new_page(viewport={"width": 1100, "height": 1400})
        await page.clock.install()
        await page.goto(f"{base}/admin/cache/")

        async def poll_later() -> None:  # five seconds pass, on both sides
            clock.advance(5)
            await page.clock.run_for(5000)

        seen: set[str] = set()
        counts = {"hits": 0, "misses": 0}

        async def traffic(paths: list[str]) -> None:
            for path in paths:
                assert (await http.get(path)).status_code == 200
                counts["hits" if path in seen else "misses"] += 1
                seen.add(path)

        # Without a token: the form, and no data.
        await expect(page.locator("#login")).to_be_visible()
        await expect(page.locator("#board")).to_be_hidden()

        # A wrong token is refused, and nothing is shown.
        await page.fill("#token", "not-the-token-0123456789")
        await page.click("#login-form button")
        await expect(page.locator("#problem")).to_contain_text("token was refused")
        await expect(page.locator("#board")).to_be_hidden()
        assert page.url == f"{base}/admin/cache/"  # the form put nothing in the URL

        # The right one: the numbers.
        await page.fill("#token", TOKEN)
        await page.click("#login-form button")
        await expect(page.locator("#board")).to_be_visible()
        await expect(page.locator("#entries")).to_have_text("1")
        await expect(page.locator("#hits")).to_have_text("0")
        assert page.url == f"{base}/admin/cache/"
        assert await page.evaluate("localStorage.length") == 0

        # A user-chosen tag is shown as text, not markup.
        await expect(page.locator("#tags td").first).to_have_text(HOSTILE)
        assert await page.locator("#tags img").count() == 0

        # Removing a namespace needs the confirmation the API asks for.
        await page.fill("#namespace", "evil")
        await page.click("#namespace-form button")
        await expect(page.locator("#action-result")).to_contain_text("needs ?confirm=true")
        await page.check("#namespace-confirm")
        await page.click("#namespace-form button")
        await expect(page.locator("#action-result")).to_contain_text("1 entry removed")
        await expect(page.locator("#entries")).to_have_text("0")

        # Traffic: the numbers change at the next poll, and the chart gets points.
        rounds = [
            ["/items/1", "/items/2", "/users/1", "/items/1"],
            ["/items/1", "/items/2", "/items/3", "/users/1", "/users/2"],
            ["/items/1", "/items/3", "/items/2", "/users/2", "/users/1", "/items/1"],
            ["/items/4", "/items/5", "/items/1", "/users/3", "/items/2"],
        ]
        ratios = []
        for paths in rounds:
            hits_before = counts["hits"]
            await traffic(paths)
            ratios.append((counts["hits"] - hits_before) / len(paths))
            await poll_later()
            # The poll has landed (one sample per round) before the next round's traffic.
            await expect(page.locator("#hits")).to_have_text(str(counts["hits"]))
            await expect(page.locator("#misses")).to_have_text(str(counts["misses"]))
        await expect(page.locator("#entries")).to_have_text(str(len(seen)))
        await expect(page.locator("#namespaces td").first).to_have_text("items")
        await expect(page.locator("#chart circle")).to_have_count(len(rounds))
        heights = await page.eval_on_selector_all(
            "#chart circle", "points => points.map(p => Number(p.getAttribute('cy')))"
        )
        # y = top + (1 - ratio) * plot height (CHART in dashboard.js: 10 + ... * 146)
        assert heights == [pytest.approx(10 + (1 - r) * 146, abs=0.1) for r in ratios]

        # Invalidate a tag from the page: its entries are gone, and the list shows it.
        items = len([path for path in seen if path.startswith("/items/")])
        await page.fill("#tag", "items")
        await page.click("#tag-form button")
        await expect(page.locator("#action-result")).to_contain_text(f"{items} entries removed")
        stats = await http.get("/admin/cache/stats", headers={"Authorization": f"Bearer {TOKEN}"})
        assert stats.json()["total_entries"] == len(seen) - items
        first_row = page.locator("#recent tr").first
        await expect(first_row.locator("td").nth(1)).to_have_text("tags")
        await expect(first_row.locator("td").nth(3)).to_have_text(str(items))
        await expect(page.locator("#entries")).to_have_text(str(len(seen) - items))
        assert await page.title() == "Cache dashboard"  # the hostile tag ran nothing

        if os.environ.get("CACHEKIT_SAVE_SCREENSHOT") == "1":
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

        # A pattern that can match every key needs the confirmation; one within a namespace.
        await page.fill("#pattern", "*")
        await page.click("#pattern-form button")
        await expect(page.locator("#action-result")).to_contain_text("no literal character")
        await page.fill("#pattern", "users:[12]")
        await page.fill("#pattern-namespace", "users")
        await page.click("#pattern-form button")
        await expect(page.locator("#action-result")).to_contain_text("2 entries removed")
        await page.click("#cleanup-form button")
        await expect(page.locator("#action-result")).to_contain_text("Cleanup: 0 entries")
        await expect(page.locator("#entries")).to_have_text(str(len(seen) - items - 2))

        # A router guarded by the app's cookie login: no token asked, the cookie decides.
        ops = await browser.new_page()
        await ops.goto(f"{base}/ops/cache/")
        await expect(ops.locator("#problem")).to_contain_text("log in as an admin first")
        await expect(ops.locator("#board")).to_be_hidden()
        await expect(ops.locator("#login")).to_be_hidden()
        await ops.context.add_cookies([{"name": "session", "value": SESSION, "url": base}])
        await ops.reload()
        await expect(ops.locator("#entries")).to_have_text(str(len(seen) - items - 2))
        await expect(ops.locator("#login")).to_be_hidden()
        await browser.close()
