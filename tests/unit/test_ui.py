"""The portal's server side: GET /v1/token, and /ui/ served from the repository's static files."""

import re

import pytest

from tests.support.tokens import TOKENS, auth


@pytest.mark.parametrize("scope", ["read", "write", "push", "metrics"])
def test_token_describes_any_valid_token(offline_client, scope):
    response = offline_client.get("/v1/token", headers=auth(scope))
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == f"{scope}-token"
    assert body["scopes"] == [scope]
    assert body["engines"] == ["*"]
    assert body["default_engine"] in body["usable_engines"]
    assert TOKENS[scope] not in response.get_data(as_text=True)


def test_token_without_a_valid_token_is_401(offline_client):
    assert offline_client.get("/v1/token").status_code == 401
    bad = offline_client.get("/v1/token", headers={"Authorization": "Bearer not-a-token-at-all"})
    assert bad.status_code == 401
    assert bad.get_json()["code"] == "UNAUTHORIZED"


def test_token_lists_only_the_engines_its_globs_match(tmp_path):
    from app import create_app

    app = create_app(
        {
            "BERTH_ENGINES": {
                "alpha": "unix:///nonexistent/a.sock",
                "beta": "unix:///nonexistent/b",
            },
            "BERTH_TOKENS": [
                {"name": "b", "token": "b-token-0123456789", "scopes": ["read"], "engines": ["b*"]}
            ],
            "BERTH_DATA_DIR": str(tmp_path),
        }
    )
    body = (
        app.test_client()
        .get("/v1/token", headers={"Authorization": "Bearer b-token-0123456789"})
        .get_json()
    )
    assert body["usable_engines"] == ["beta"]
    assert body["engines"] == ["b*"]


def test_portal_page_is_public_and_locked_to_its_origin(offline_client):
    page = offline_client.get("/ui/")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    html = page.get_data(as_text=True)
    # Every script and stylesheet is one of ours: nothing from another origin.
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert src.startswith("data:") or not re.match(r"^[a-z]+:|^//", src), src
        if not src.startswith("data:"):
            assert offline_client.get("/ui/" + src).status_code == 200, src


def test_portal_serves_only_its_own_files(offline_client):
    assert offline_client.get("/ui/vendor/chart.umd.min.js").status_code == 200
    assert offline_client.get("/ui/__init__.py").status_code == 404
    assert offline_client.get("/ui/vendor/README.md").status_code == 404
    assert offline_client.get("/ui/../config.py").status_code == 404


def test_portal_keeps_the_token_out_of_urls_and_cookies(offline_client):
    script = offline_client.get("/ui/app.js").get_data(as_text=True)
    assert "sessionStorage" in script
    assert "document.cookie" not in script and "localStorage" not in script
