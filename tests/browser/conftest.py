"""A real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) on the service under test.

Nothing downloads a browser: Playwright is pointed at the system binary, and every request to a
host other than the API is refused and recorded, so a page that needs the internet fails its test.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # a persistent context gets a fresh --user-data-dir of its own
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            chromium_sandbox=False, args=FLAGS, viewport={"width": 1280, "height": 900})
        yield context
        context.close()


class Page:
    """A tab on the dashboard; `outside` lists requests that tried to leave the API's host."""

    def __init__(self, page, api_url: str, shots):
        self.page, self.api_url, self.shots, self.outside = page, api_url, shots, []
        host = urlsplit(api_url).netloc

        def guard(route):
            url = route.request.url
            if urlsplit(url).netloc == host or url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                self.outside.append(url)
                route.abort()

        page.route("**/*", guard)

    def open(self, fragment: str = "", path: str = "/") -> None:
        self.page.goto(f"{self.api_url}{path}{'#' + fragment if fragment else ''}")

    def screenshot(self, name: str):
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def tab(browser, api_url, admin_key, tmp_path) -> Iterator[Page]:
    page = browser.new_page()
    # the dashboard reads its key from localStorage, as a person's browser keeps the one they pasted
    page.add_init_script(f"localStorage.setItem('trainserve.apiKey', {json.dumps(admin_key)})")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    wrapped = Page(page, api_url, tmp_path)
    yield wrapped
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not wrapped.outside, f"the page tried to reach the internet: {wrapped.outside}"
