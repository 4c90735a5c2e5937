"""One error model: every failure is problem+json with a stable code and the request id."""

import pytest

from app import create_app
from app.http.auth import PUBLIC
from app.http.scopes import NONE, Route
from app.observability.logs import request_id_from

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id"}


def _assert_problem(response, status, code):
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert PROBLEM_KEYS <= set(body)
    assert body["status"] == status and body["code"] == code
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


def test_unknown_route_is_problem_json(offline_client, headers):
    _assert_problem(offline_client.get("/v1/nothing-here", headers=headers()), 404, "NOT_FOUND")


def test_wrong_method_is_problem_json_with_allow(offline_client, headers):
    response = offline_client.delete("/v1/search", headers=headers())
    _assert_problem(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("post", "/v1/images/pull/tags", "pull"),
        ("delete", "/v1/images/team/history", "team/history"),
    ],
)
def test_a_bare_name_the_url_reads_otherwise_is_405_with_a_way_out(
    offline_client, headers, method, path, name
):
    response = getattr(offline_client, method)(path, headers=headers("admin"), json={"x": 1})
    body = _assert_problem(response, 405, "METHOD_NOT_ALLOWED")
    assert f"'{name}:latest'" in body["detail"]
    assert method.upper() not in response.headers["Allow"].split(", ")


def test_unknown_query_parameter_is_400(offline_client, headers):
    body = _assert_problem(
        offline_client.get("/v1/images?colour=red", headers=headers()), 400, "VALIDATION_FAILED"
    )
    assert "colour" in body["errors"]


def test_repeated_single_query_parameter_is_400(offline_client, headers):
    body = _assert_problem(
        offline_client.get("/v1/search?term=a&term=b", headers=headers()), 400, "VALIDATION_FAILED"
    )
    assert "term" in body["errors"]


def test_query_on_an_operation_without_parameters_is_400(offline_client, headers):
    _assert_problem(
        offline_client.get("/v1/images/busybox/history?x=1", headers=headers()),
        400,
        "VALIDATION_FAILED",
    )


def test_unknown_body_field_is_400(offline_client, headers):
    body = _assert_problem(
        offline_client.post(
            "/v1/images/busybox/tags",
            json={"repository": "a", "colour": 1},
            headers=headers("write"),
        ),
        400,
        "VALIDATION_FAILED",
    )
    assert "colour" in body["errors"]


def test_malformed_json_is_400(offline_client, headers):
    _assert_problem(
        offline_client.post(
            "/v1/images/busybox/tags",
            data=b"{not json",
            content_type="application/json",
            headers=headers("write"),
        ),
        400,
        "MALFORMED_JSON",
    )


def test_body_with_another_content_type_is_415(offline_client, headers):
    _assert_problem(
        offline_client.post(
            "/v1/images/busybox/tags",
            data=b'{"repository":"a"}',
            content_type="text/plain",
            headers=headers("write"),
        ),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )


def test_json_body_over_the_limit_is_413(tmp_path, headers):
    from tests.support.tokens import token_entries

    app = create_app(
        {
            "BERTH_TOKENS": token_entries(),
            "BERTH_DATA_DIR": str(tmp_path),
            "BERTH_MAX_JSON_BYTES": 64,
            "DOCKER_HOST": "unix:///nonexistent",
        }
    )
    response = app.test_client().post(
        "/v1/images/busybox/tags", json={"repository": "a" * 100}, headers=headers("write")
    )
    _assert_problem(response, 413, "PAYLOAD_TOO_LARGE")


def test_invalid_reference_in_path_is_400_before_the_engine(offline_client, headers):
    body = _assert_problem(
        offline_client.get("/v1/images/Upper/Case", headers=headers()), 400, "INVALID_REFERENCE"
    )
    assert "lowercase" in body["detail"]


def test_engine_unavailable_is_503(offline_client, headers):
    body = _assert_problem(
        offline_client.get("/v1/images", headers=headers()), 503, "ENGINE_UNAVAILABLE"
    )
    assert "sock" not in body["detail"]


def test_unforeseen_error_is_500_without_internals(tmp_path):
    app = create_app({"BERTH_AUTH": "disabled", "BERTH_DATA_DIR": str(tmp_path)})

    def explode():
        raise RuntimeError("secret at /var/run/docker.sock")

    app.add_url_rule("/boom", view_func=explode)
    app.extensions["berth.routes"][("/boom", "GET")] = Route(PUBLIC, NONE, "a test failure")
    body = _assert_problem(app.test_client().get("/boom"), 500, "INTERNAL")
    assert "docker.sock" not in str(body) and "Traceback" not in str(body)


@pytest.mark.parametrize("given", ["abc-123", "req.1:2_3"])
def test_sane_request_id_is_echoed(offline_client, given):
    assert (
        offline_client.get("/v1/health", headers={"X-Request-Id": given}).headers["X-Request-Id"]
        == given
    )


def test_insane_request_id_is_replaced(offline_client):
    response = offline_client.get("/v1/health", headers={"X-Request-Id": "bad id\x01" + "x" * 200})
    assert response.headers["X-Request-Id"] != "bad id"
    assert len(response.headers["X-Request-Id"]) == 32


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("req-1.a:b_C", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("req 1", False),
        ("req-1\n", False),  # never echoed into a response header with its line break
        ("", False),
    ],
)
def test_a_request_id_is_echoed_only_when_sane(given, kept):
    made = request_id_from(given)
    assert (made == given) is kept
    if not kept:
        assert len(made) == 32 and int(made, 16) >= 0
