"""Swagger UI at /apidocs/ in a real browser: Debian's chromium, headless, driven by playwright
(which downloads no browser of its own here).

The page must load with no script error and without a single request off the machine (an
offline network is the normal case for an internal service), show Berth's title and its tags
in reading order, and work: authorize with a token, run one call.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.support.browser import launch
from tests.support.gunicorn import gunicorn_server
from tests.support.needs import need_browser
from tests.support.tokens import TOKENS, token_entries

TAG_ORDER = [
    "images",
    "lifecycle",
    "archives",
    "registries",
    "jobs",
    "engines",
    "system",
    "operations",
]


@pytest.fixture
def server(harness, tmp_path):
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path / "data")}
    with gunicorn_server(env, workers=1, tokens=token_entries()) as server:
        yield server


@pytest.fixture
def page():
    sync_api = need_browser()
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_swagger_ui_loads_offline_without_errors_and_runs_a_call(server, page):
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{server.url}/apidocs/", wait_until="networkidle")
    page.wait_for_selector("#operations-system-describe_token", timeout=30_000)
    assert page.title() == "Berth"
    tags = page.locator(".opblock-tag[data-tag]").evaluate_all(
        "nodes => nodes.map(n => n.dataset.tag)"
    )
    assert tags == TAG_ORDER

    page.click("button.authorize")
    page.fill(".modal-ux input", TOKENS["read"])
    page.click(".modal-ux .auth-btn-wrapper button.authorize")
    page.click(".modal-ux button.btn-done")

    operation = page.locator("#operations-system-describe_token")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status")
    status.first.wait_for(timeout=30_000)
    assert status.first.inner_text().strip() == "200"
    body = operation.locator(".live-responses-table .response-col_description pre").first
    assert "read-token" in body.inner_text()

    assert not errors, errors
    assert requested
    off_machine = [u for u in requested if urlsplit(u).hostname != "127.0.0.1"]
    assert not off_machine, off_machine
