"""Bad input, by hand: every case is a 4xx problem+json and leaves the engine as it was."""

import base64

import pytest

from app import create_app
from tests.support.tokens import token_entries

JSON_OPERATIONS = [
    ("POST", "/v1/images/berth-test/busybox:latest/tags", "write"),
    ("POST", "/v1/containers/none/commit", "write"),
    ("POST", "/v1/images/pull", "write"),
    ("POST", "/v1/images/prune", "delete"),
    ("POST", "/v1/images/berth-test/busybox:latest/push", "push"),
    ("POST", "/v1/distributions", "push"),
]

BAD_REFERENCES = [
    "a" * 300,
    "../../etc/passwd",
    "team/../app",
    "app%00evil",
    "app%01",
    "app%7f",
    "UPPER",
    "app:tag:more",
    "app@sha256:short",
    "%20app",
    "app/",
]


@pytest.fixture
def engine_state(docker_client):
    """Every image id with its tags, to compare before and after."""

    def snapshot():
        return sorted(
            (image.id, tuple(sorted(image.tags))) for image in docker_client.images.list(all=True)
        )

    return snapshot


def _is_problem(response, *statuses):
    assert response.status_code in statuses, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == response.status_code and body["code"] and body["request_id"]
    return body


@pytest.mark.parametrize(("method", "path", "scope"), JSON_OPERATIONS)
def test_malformed_json_is_400(client, headers, engine_state, method, path, scope):
    before = engine_state()
    for raw in (b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"a": 1'):
        response = client.open(
            path, method=method, data=raw, content_type="application/json", headers=headers(scope)
        )
        body = _is_problem(response, 400, 404)
        if response.status_code == 400:
            assert body["code"] in ("MALFORMED_JSON", "VALIDATION_FAILED")
    assert engine_state() == before


@pytest.mark.parametrize(("method", "path", "scope"), JSON_OPERATIONS)
def test_wrong_content_type_is_415(client, headers, engine_state, method, path, scope):
    before = engine_state()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = client.open(
            path,
            method=method,
            data=b'{"reference": "x"}',
            content_type=content_type,
            headers=headers(scope),
        )
        _is_problem(response, 415, 404)
    assert engine_state() == before


@pytest.mark.parametrize(("method", "path", "scope"), JSON_OPERATIONS)
def test_unknown_fields_are_400(client, headers, engine_state, method, path, scope):
    before = engine_state()
    response = client.open(path, method=method, json={"surprise": True}, headers=headers(scope))
    body = _is_problem(response, 400, 404)
    if response.status_code == 400:
        assert "surprise" in body.get("errors", {})
    assert engine_state() == before


@pytest.mark.parametrize(("method", "path", "scope"), JSON_OPERATIONS)
def test_json_over_the_limit_is_413(config, headers, engine_state, method, path, scope):
    app = create_app({**config, "BERTH_MAX_JSON_BYTES": 256})
    before = engine_state()
    response = app.test_client().open(
        path, method=method, json={"reference": "a" * 1000}, headers=headers(scope)
    )
    _is_problem(response, 413, 404)
    assert engine_state() == before


@pytest.mark.parametrize("ref", BAD_REFERENCES)
@pytest.mark.parametrize(
    ("method", "template", "scope"),
    [
        ("GET", "/v1/images/{}", "read"),
        ("GET", "/v1/images/{}/history", "read"),
        ("GET", "/v1/images/{}/layers", "read"),
        ("DELETE", "/v1/images/{}", "delete"),
        ("GET", "/v1/images/{}/archive", "read"),
    ],
)
def test_bad_references_in_paths_are_400(
    client, headers, engine_state, ref, method, template, scope
):
    before = engine_state()
    response = client.open(template.format(ref), method=method, headers=headers(scope))
    _is_problem(response, 400, 404, 405)
    assert engine_state() == before


@pytest.mark.parametrize("ref", ["a" * 300, "../x", "a\x00b", "a\tb", "A", "a" + "\u00e9"])
def test_bad_references_in_bodies_are_400(client, headers, engine_state, ref):
    before = engine_state()
    for path, body, scope in (
        ("/v1/images/pull", {"reference": ref}, "write"),
        ("/v1/images/berth-test/busybox:latest/tags", {"repository": ref}, "write"),
        ("/v1/images/berth-test/busybox:latest/push", {"target": ref}, "push"),
    ):
        body = _is_problem(client.post(path, json=body, headers=headers(scope)), 400)
        assert body["code"] in ("VALIDATION_FAILED", "INVALID_REFERENCE")
    assert engine_state() == before


def test_repeated_and_huge_query_parameters_are_400(client, headers, engine_state):
    before = engine_state()
    _is_problem(client.get("/v1/search?term=a&term=b", headers=headers("read")), 400)
    _is_problem(client.get("/v1/search?term=" + "x" * 100_000, headers=headers("read")), 400)
    _is_problem(client.get("/v1/images?all=true&all=false", headers=headers("read")), 400)
    _is_problem(client.get("/v1/images?reference=" + "a" * 10_000, headers=headers("read")), 400)
    _is_problem(
        client.get(
            "/v1/images?" + "&".join(f"p{i}=1" for i in range(500)), headers=headers("read")
        ),
        400,
    )
    _is_problem(
        client.delete(
            "/v1/images/berth-test/busybox:latest?force=true&force=true", headers=headers("delete")
        ),
        400,
    )
    assert engine_state() == before


@pytest.mark.parametrize(
    "value",
    [
        "%%%not-base64%%%",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b"[1,2,3]").decode(),
        "x" * 20_000,
        "\u00e9t\u00e9",
    ],
)
def test_bad_registry_credentials_header_is_400_and_never_echoed(
    client, headers, engine_state, value
):
    before = engine_state()
    for method, path, body, scope in (
        ("POST", "/v1/images/pull", {"reference": "127.0.0.1:9/none:1"}, "write"),
        (
            "POST",
            "/v1/images/berth-test/busybox:latest/push",
            {"target": "127.0.0.1:9/n:1"},
            "push",
        ),
    ):
        response = client.open(
            path, method=method, json=body, headers={**headers(scope), "X-Registry-Auth": value}
        )
        problem = _is_problem(response, 400)
        assert problem["code"] == "INVALID_REGISTRY_AUTH"
        assert value not in response.get_data(as_text=True)
    assert engine_state() == before


def test_bad_archive_uploads_change_nothing(client, headers, engine_state):
    before = engine_state()
    for body in (b"", b"garbage" * 100, b"\x1f\x8b\x08\x00broken-gzip"):
        for path in ("/v1/archives", "/v1/images/import?reference=bad-upload:1"):
            response = client.post(
                path, data=body, content_type="application/x-tar", headers=headers("write")
            )
            _is_problem(response, 400)
    assert engine_state() == before


def test_tokens_in_odd_shapes_are_401(config, engine_state):
    client = create_app({**config, "BERTH_TOKENS": token_entries()}).test_client()
    for value in ("Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer\x00x", "Bearer " + "x" * 9000):
        response = client.get("/v1/images", headers={"Authorization": value})
        _is_problem(response, 401)
