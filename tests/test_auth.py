"""Authentication and scopes: every route declares one, and the app fails closed."""

import hashlib
import json
import logging

import pytest

from app import create_app
from app.auth import PUBLIC, TokenConfigError, declared_scope

SAMPLE_ARGS = {
    "ref": "berth-test/busybox:latest",
    "container": "none",
    "id": "none",
    "registry": "127.0.0.1:1",
    "name": "x",
    "filename": "x",
}


def _urls(app):
    for rule in app.url_map.iter_rules():
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<path:{arg}>", SAMPLE_ARGS[arg]).replace(
                f"<{arg}>", SAMPLE_ARGS[arg]
            )
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method, url


def test_every_route_declares_a_scope(offline_app):
    undeclared = [
        r.endpoint
        for r in offline_app.url_map.iter_rules()
        if declared_scope(offline_app, r.endpoint) is None
    ]
    assert undeclared == []


def test_no_route_but_the_public_ones_answers_without_a_token(offline_app, offline_client):
    checked = 0
    for rule, method, url in _urls(offline_app):
        response = offline_client.open(url, method=method)
        if declared_scope(offline_app, rule.endpoint) == PUBLIC:
            continue
        checked += 1
        assert response.status_code == 401, (method, url, response.status_code)
        assert response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert checked >= 5


def test_public_routes_are_exactly_health_ready_and_docs(offline_app):
    public = {
        r.rule
        for r in offline_app.url_map.iter_rules()
        if declared_scope(offline_app, r.endpoint) == PUBLIC
    }
    assert {"/v1/health", "/v1/ready", "/openapi.json", "/apidocs/"} <= public
    assert all(
        p.startswith(
            (
                "/v1/health",
                "/v1/ready",
                "/openapi.json",
                "/apidocs",
                "/flasgger_static",
                "/oauth2-redirect",
            )
        )
        for p in public
    )


def test_unknown_token_is_401_invalid_token(offline_client):
    response = offline_client.get("/v1/images", headers={"Authorization": "Bearer nope-nope"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.get_json()["code"] == "UNAUTHORIZED"


def test_token_without_the_scope_is_403(offline_client, headers):
    response = offline_client.post(
        "/v1/images/busybox/tags", json={"repository": "x"}, headers=headers("read")
    )
    assert response.status_code == 403
    body = response.get_json()
    assert body["code"] == "FORBIDDEN" and body["required_scope"] == "write"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_admin_holds_every_scope(offline_client, headers):
    # Past auth, the offline engine answers 503: the token was accepted.
    response = offline_client.post(
        "/v1/images/busybox/tags", json={"repository": "x"}, headers=headers("admin")
    )
    assert response.status_code == 503


def test_tokens_file_may_hold_only_sha256(tmp_path):
    secret = "file-token-0123456789abcdef"
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps(
            [
                {
                    "name": "ci",
                    "sha256": hashlib.sha256(secret.encode()).hexdigest(),
                    "scopes": ["read"],
                }
            ]
        )
    )
    app = create_app(
        {
            "BERTH_TOKENS_FILE": str(path),
            "BERTH_DATA_DIR": str(tmp_path),
            "DOCKER_HOST": f"unix://{tmp_path}/none.sock",
        }
    )
    client = app.test_client()
    ok = client.get("/v1/containers", headers={"Authorization": f"Bearer {secret}"})
    assert ok.status_code == 503  # authenticated; the engine is absent
    assert (
        client.get("/v1/containers", headers={"Authorization": "Bearer x" * 3}).status_code == 401
    )


def test_no_tokens_configured_refuses_every_request(tmp_path):
    app = create_app({"BERTH_DATA_DIR": str(tmp_path), "DOCKER_HOST": "unix:///nonexistent"})
    client = app.test_client()
    assert client.get("/v1/images").status_code == 401
    assert (
        client.get("/v1/images", headers={"Authorization": "Bearer anything-at-all"}).status_code
        == 401
    )


def test_auth_disabled_is_explicit_and_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="berth"):
        logging.getLogger("berth").addHandler(caplog.handler)
        app = create_app(
            {
                "BERTH_AUTH": "disabled",
                "BERTH_DATA_DIR": str(tmp_path),
                "DOCKER_HOST": f"unix://{tmp_path}/none.sock",
            }
        )
    assert any("BERTH_AUTH=disabled" in r.getMessage() for r in caplog.records)
    assert app.test_client().get("/v1/containers").status_code == 503


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "a", "token": "short", "scopes": ["read"]},
        {"name": "a", "token": "x" * 20, "scopes": ["root"]},
        {"name": "a", "token": "x" * 20, "sha256": "0" * 64, "scopes": ["read"]},
        {"name": "", "token": "x" * 20, "scopes": ["read"]},
        {"name": "a", "sha256": "zz", "scopes": ["read"]},
        {"name": "a", "token": "x" * 20, "scopes": ["read"], "extra": 1},
    ],
)
def test_malformed_token_entries_are_refused_without_echoing_secrets(tmp_path, entry):
    with pytest.raises(TokenConfigError) as caught:
        create_app({"BERTH_TOKENS": [entry], "BERTH_DATA_DIR": str(tmp_path)})
    assert "x" * 20 not in str(caught.value)


def test_tokens_never_reach_the_log(offline_client, headers, caplog):
    logging.getLogger("berth").addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG):
            offline_client.get("/v1/images", headers=headers("read"))
            offline_client.get("/v1/images", headers={"Authorization": "Bearer leaked-secret-1"})
    finally:
        logging.getLogger("berth").removeHandler(caplog.handler)
    text = caplog.text + "".join(str(getattr(r, "berth", "")) for r in caplog.records)
    assert headers("read")["Authorization"].split()[1] not in text
    assert "leaked-secret-1" not in text
    assert "read-token" in text  # the token's name is logged, not the token
