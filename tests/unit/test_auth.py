"""Authentication and scopes: every route declares one, and the app fails closed."""

import hashlib
import json
import logging

import pytest

from app import create_app
from app.http.auth import ANY_TOKEN, PUBLIC, SCOPES, TokenConfigError, required_scope
from app.http.scopes import ROUTES, route_key, scope_table
from scripts.scope_table import README, readme_table

SAMPLE_ARGS = {
    "ref": "berth-test/busybox:latest",
    "container": "none",
    "id": "none",
    "registry": "127.0.0.1:1",
    "name": "x",
    "filename": "x",
    "engine": "local",
    "version": "1.41",
    "rest": "containers/create",
}


def _engine_api(rule) -> bool:
    """A rule of the Engine-API front door, which answers in the engine's error shape."""
    return rule.rule.startswith("/engines/")


def _refused_with(response, rule, code: str) -> bool:
    """Native routes refuse with problem+json's ``code``; the Engine API with a message."""
    body = response.get_json()
    return bool(body.get("message")) if _engine_api(rule) else body["code"] == code


def _urls(app):
    for rule in app.url_map.iter_rules():
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<path:{arg}>", SAMPLE_ARGS[arg]).replace(
                f"<{arg}>", SAMPLE_ARGS[arg]
            )
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method, url


def _routes(app):
    """Every (rule, method) the app serves; HEAD is its GET."""
    return {
        route_key(rule.rule, method)
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }


def test_the_route_table_and_the_url_map_are_the_same_routes(offline_app):
    served = _routes(offline_app)
    assert sorted(served - set(ROUTES)) == [], "routes with no scope in app/http/scopes.py"
    assert sorted(set(ROUTES) - served) == [], "table rows for routes that do not exist"


def test_the_route_table_names_only_known_scopes_and_engine_rules(offline_app):
    for key, route in ROUTES.items():
        assert route.scope in (*SCOPES, PUBLIC, ANY_TOKEN), key
        assert route.engines in ("query", "body", "filtered", "default", "none", "path"), key
        assert route.exposes, key
    # The table says where ?engine= is checked; the views that take it say the same.
    for rule in offline_app.url_map.iter_rules():
        doc = getattr(offline_app.view_functions[rule.endpoint], "berth_doc", None)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            route = ROUTES[route_key(rule.rule, method)]
            takes_engine = doc is not None and doc.engine
            assert takes_engine == (route.engines == "query"), (rule.rule, method)


def test_a_route_missing_from_the_table_is_refused(offline_app, headers):
    offline_app.add_url_rule("/v1/unlisted", "unlisted", lambda: "open")
    client = offline_app.test_client()
    for sent in ({}, headers("admin")):
        response = client.get("/v1/unlisted", headers=sent)
        assert response.status_code == 403
        assert response.get_json()["code"] == "ROUTE_CLOSED"


def _token_without(scope):
    """A scope whose token lacks ``scope`` (every scope but admin lacks the others)."""
    return "metrics" if scope == "read" else "read"


def test_every_route_refuses_no_token_and_a_token_without_its_scope(offline_app, headers):
    client = offline_app.test_client()
    refused = 0
    for rule, method, url in _urls(offline_app):
        route = ROUTES[route_key(rule.rule, method)]
        anonymous = client.open(url, method=method)
        if route.scope == PUBLIC:
            assert anonymous.status_code != 401, (method, url)
            continue
        assert anonymous.status_code == 401, (method, url, anonymous.status_code)
        assert _refused_with(anonymous, rule, "UNAUTHORIZED")
        if route.scope == ANY_TOKEN:
            continue
        other = _token_without(route.scope)
        response = client.open(url, method=method, headers=headers(other))
        assert response.status_code == 403, (method, url, other, response.status_code)
        body = response.get_json()
        if _engine_api(rule):
            assert f"'{route.scope}' scope" in body["message"], (method, url)
        else:
            assert body["code"] == "FORBIDDEN" and body["required_scope"] == route.scope, url
        allowed = client.open(url, method=method, headers=headers(route.scope))
        code = (allowed.get_json(silent=True) or {}).get("code")
        assert code not in ("UNAUTHORIZED", "FORBIDDEN"), (method, url, code)
        refused += 1
    assert refused >= 24


def test_exporting_a_container_needs_the_export_scope_not_read(offline_client, headers):
    url = "/v1/containers/web-1/export"
    assert ROUTES[(url.replace("web-1", "<container>"), "GET")].scope == "export"
    refused = offline_client.get(url, headers=headers("read"))
    assert refused.status_code == 403
    assert refused.get_json()["required_scope"] == "export"
    # Past the scope check the offline engine answers 503: export (and admin) are let through.
    for scope in ("export", "admin"):
        assert offline_client.get(url, headers=headers(scope)).status_code == 503
    # and export alone reads no image metadata
    assert offline_client.get("/v1/images", headers=headers("export")).status_code == 403


def test_metrics_are_public_only_when_configured(tmp_path, headers):
    for public, status in ((False, 401), (True, 200)):
        app = create_app(
            {
                "BERTH_METRICS_PUBLIC": public,
                "BERTH_DATA_DIR": str(tmp_path / str(public)),
                "DOCKER_HOST": f"unix://{tmp_path}/none.sock",
            }
        )
        assert app.test_client().get("/metrics").status_code == status
        expected = PUBLIC if public else "metrics"
        assert required_scope(app, "/metrics", "GET") == expected


def test_the_readme_scope_table_is_the_code_table():
    assert readme_table(README.read_text()) == scope_table(), (
        "README's scope table is stale: run 'scripts/scope_table.py --write'"
    )


def test_no_route_but_the_public_ones_answers_without_a_token(offline_app, offline_client):
    checked = 0
    for rule, method, url in _urls(offline_app):
        response = offline_client.open(url, method=method)
        if required_scope(offline_app, rule.rule, method) == PUBLIC:
            continue
        checked += 1
        assert response.status_code == 401, (method, url, response.status_code)
        expected = "application/json" if _engine_api(rule) else "application/problem+json"
        assert response.mimetype == expected
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert checked >= 5


def test_public_routes_are_exactly_health_ready_docs_and_portal(offline_app):
    public = {
        rule for (rule, method) in _routes(offline_app) if ROUTES[(rule, method)].scope == PUBLIC
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
                "/ui/",  # the portal's static files: no data, every call needs a token
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
