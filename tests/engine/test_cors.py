"""CORS: the pages of BERTH_CORS_ORIGINS may call Berth from a browser; no other origin may."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from app import create_app
from app.http.accessors import services
from tests.support.browser import launch
from tests.support.gunicorn import free_port, gunicorn_server
from tests.support.needs import need_browser
from tests.support.tokens import TOKENS, auth, token_entries

PORTAL = "http://portal.example:8443"


@pytest.fixture
def cors_client(config):
    config["BERTH_CORS_ORIGINS"] = [PORTAL, "http://127.0.0.1:1"]
    app = create_app(config)
    yield app.test_client()
    services(app).engines.close()


def _preflight(client, origin, method="GET", path="/v1/images"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, if-none-match",
        },
    )


def test_preflights_are_answered_for_listed_origins_only(cors_client):
    allowed = _preflight(cors_client, PORTAL)
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == PORTAL
    assert "authorization" in allowed.headers["Access-Control-Allow-Headers"].lower()
    assert "GET" in allowed.headers["Access-Control-Allow-Methods"]
    assert _preflight(cors_client, PORTAL, "DELETE", "/v1/images/x:1").status_code == 204

    for refused in (
        _preflight(cors_client, "http://elsewhere.example"),
        _preflight(cors_client, PORTAL + "/"),  # exact origins: no near miss
    ):
        assert refused.status_code == 405
        assert "Access-Control-Allow-Origin" not in refused.headers
    # A browser takes only a 2xx as a preflight's consent.
    assert _preflight(cors_client, PORTAL, "PUT").status_code == 405  # no such method
    assert _preflight(cors_client, PORTAL, "POST", "/v1/images").status_code == 405  # not here
    assert _preflight(cors_client, PORTAL, "GET", "/v1/nothing").status_code == 404


def test_answers_and_errors_carry_cors_headers_on_both_paths(cors_client, images):
    images.image("true")
    exposed = {"location", "link", "etag", "x-request-id", "retry-after"}
    for _ in range(3):  # the second and third could come from the cache's fast path
        answer = cors_client.get("/v1/images?limit=1", headers={**auth("read"), "Origin": PORTAL})
        assert answer.status_code == 200
        assert answer.headers["Access-Control-Allow-Origin"] == PORTAL
        names = {
            h.strip().lower() for h in answer.headers["Access-Control-Expose-Headers"].split(",")
        }
        assert exposed <= names
        assert answer.headers["ETag"] and answer.headers["Link"]
    refused = cors_client.get("/v1/images", headers={"Origin": PORTAL})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == PORTAL  # the page can read why
    other = cors_client.get("/v1/images", headers={**auth("read"), "Origin": "http://x.example"})
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers


def test_without_origins_configured_there_is_no_cors(client):
    assert _preflight(client, PORTAL).status_code == 405
    answer = client.get("/v1/health", headers={"Origin": PORTAL})
    assert "Access-Control-Allow-Origin" not in answer.headers


PAGE = """<!doctype html><title>portal</title><script>
async function call() {
  const answer = await fetch(window.berth + "/v1/images?limit=1", {
    headers: {"Authorization": "Bearer " + TOKEN}});
  const body = await answer.json();
  return {status: answer.status, etag: answer.headers.get("ETag"),
          requestId: answer.headers.get("X-Request-Id"), count: body.images.length};
}
</script>"""


@contextmanager
def page_server() -> Iterator[str]:
    """A page served on another origin than Berth's; yields its URL."""
    html = PAGE.replace("TOKEN", repr(TOKENS["read"]))

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            data = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_a_listed_origin_calls_berth_from_a_browser(harness, tmp_path, images):
    sync_api = need_browser()
    images.image("true")
    with page_server() as listed_page, page_server() as other_page:
        env = {
            "DOCKER_HOST": harness["docker_host"],
            "BERTH_DATA_DIR": str(tmp_path / "data"),
            "BERTH_CORS_ORIGINS": listed_page,
        }
        with gunicorn_server(env, workers=1, tokens=token_entries()) as berth:
            with sync_api.sync_playwright() as playwright:
                browser = launch(playwright)
                try:
                    page = browser.new_page()
                    page.goto(listed_page)
                    page.evaluate(f"window.berth = {berth.url!r}")
                    got = page.evaluate("call()")
                    assert got["status"] == 200 and got["count"] == 1
                    assert got["etag"] and got["requestId"]

                    page.goto(other_page)  # the same page on an origin not listed
                    page.evaluate(f"window.berth = {berth.url!r}")
                    with pytest.raises(sync_api.Error, match="Failed to fetch"):
                        page.evaluate("call()")
                finally:
                    browser.close()
