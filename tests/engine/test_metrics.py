"""Prometheus metrics: scope or public switch, and the series an operator needs."""

import re
import time
import uuid

import pytest

from app import create_app
from tests.support.gunicorn import gunicorn_server


def _value(text, name, **labels):
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_need_the_metrics_scope(client, headers):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=headers("read")).status_code == 403
    response = client.get("/metrics", headers=headers("metrics"))
    assert response.status_code == 200
    assert response.mimetype == "text/plain"


def test_metrics_can_be_made_public(config):
    app = create_app({**config, "BERTH_METRICS_PUBLIC": True})
    assert app.test_client().get("/metrics").status_code == 200


def test_requests_latency_engine_calls_and_bytes_are_counted(client, headers, images):
    _, ref = images.image("true")
    before = client.get("/metrics", headers=headers("metrics")).get_data(as_text=True)
    base = (
        _value(before, "berth_http_requests_total", route="/v1/images/<path:ref>", status="200")
        or 0
    )
    for _ in range(3):
        assert client.get(f"/v1/images/{ref}", headers=headers("read")).status_code == 200
    text = client.get("/metrics", headers=headers("metrics")).get_data(as_text=True)
    assert (
        _value(
            text,
            "berth_http_requests_total",
            method="GET",
            route="/v1/images/<path:ref>",
            status="200",
        )
        == base + 3
    )
    assert (
        _value(text, "berth_http_request_duration_seconds_count", route="/v1/images/<path:ref>")
        >= 3
    )
    assert (
        _value(text, "berth_engine_request_duration_seconds_count", endpoint="/images/{name}/json")
        >= 3
    )
    assert _value(text, "berth_stream_bytes_total", direction="out") > 0
    assert not re.search(r'endpoint="/images/berth-test', text)  # ids and names are templated


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v1.41/images/busybox:1/json", "/images/{name}/json"),
        ("/v1.41/images/127.0.0.1:5000/a/b:1/history", "/images/{name}/history"),
        ("/v1.41/images/json", "/images/json"),
        ("/v1.41/containers/abc/json", "/containers/{name}/json"),
        ("/v1.41/images/load", "/images/load"),
    ],
)
def test_engine_paths_are_templated(path, template):
    from app.observability.metrics import engine_endpoint

    assert engine_endpoint(path) == template


def test_metrics_aggregate_every_gunicorn_worker(harness, tmp_path):
    import requests

    from tests.support.tokens import TOKENS, token_entries

    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    with gunicorn_server(env, workers=2, tokens=token_entries()) as server:
        auth = {"Authorization": f"Bearer {TOKENS['read']}"}
        for _ in range(20):
            requests.get(f"{server.url}/v1/containers", headers=auth, timeout=10)
        text = requests.get(
            f"{server.url}/metrics",
            timeout=10,
            headers={"Authorization": f"Bearer {TOKENS['metrics']}"},
        ).text
        assert _value(text, "berth_http_requests_total", route="/v1/containers", status="200") == 20


def _jobs_by_state(text: str) -> dict[str, float]:
    """The ``berth_jobs`` gauge, state → count; fails if a line carries any other label."""
    found = {}
    for line in text.splitlines():
        if line.startswith("berth_jobs{"):
            labels, value = line.rsplit(" ", 1)
            assert re.fullmatch(r'berth_jobs\{state="[a-z]+"\}', labels), line  # no engine label
            found[labels.split('"')[1]] = float(value)
    return found


def _push_jobs(post, get, ref, harness) -> None:
    """One push job that succeeds (open registry) and one that fails (no credentials)."""
    for registry, outcome in (("open", "succeeded"), ("basic", "failed")):
        address = harness["registries"][registry]["address"]
        location = post(f"/v1/images/{ref}/push", f"{address}/metrics{uuid.uuid4().hex[:8]}/a:1")
        deadline = time.monotonic() + 60
        while (state := get(location)["state"]) in ("queued", "running"):
            assert time.monotonic() < deadline, f"{location} is still {state}"
            time.sleep(0.1)
        assert state == outcome


def test_jobs_by_state_are_exported(client, headers, images, harness):
    _, ref = images.image("true")
    metrics = headers("metrics")
    assert _jobs_by_state(client.get("/metrics", headers=metrics).get_data(as_text=True)) == {
        state: 0 for state in ("queued", "running", "succeeded", "failed", "cancelled")
    }

    def post(path, target):
        async_push = {**headers("push"), "Prefer": "respond-async"}
        response = client.post(path, json={"target": target}, headers=async_push)
        assert response.status_code == 202, response.get_json()
        return response.headers["Location"]

    _push_jobs(post, lambda url: client.get(url, headers=headers("push")).get_json(), ref, harness)
    text = client.get("/metrics", headers=metrics).get_data(as_text=True)
    assert _jobs_by_state(text) == {
        "queued": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 1,
        "cancelled": 0,
    }


def test_jobs_by_state_are_exported_once_under_gunicorn(harness, tmp_path, images):
    import requests

    from tests.support.tokens import TOKENS, harness_registries, token_entries

    _, ref = images.image("true")
    env = {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_DATA_DIR": str(tmp_path),
        "BERTH_ALLOWED_REGISTRIES": ",".join(harness_registries(harness)),
        "BERTH_ALLOW_PUBLIC_REGISTRIES": "false",
    }
    push = {"Authorization": f"Bearer {TOKENS['push']}"}
    with gunicorn_server(env, workers=2, tokens=token_entries()) as server:

        def post(path, target):
            response = requests.post(
                f"{server.url}{path}",
                json={"target": target},
                headers={**push, "Prefer": "respond-async"},
                timeout=30,
            )
            assert response.status_code == 202, response.text
            return response.headers["Location"]

        def get(location):  # a new connection each time: both workers answer
            url = f"{server.url}{location}"
            return requests.get(url, headers={**push, "Connection": "close"}, timeout=10).json()

        _push_jobs(post, get, ref, harness)
        scrapes = [
            requests.get(
                f"{server.url}/metrics",
                headers={"Authorization": f"Bearer {TOKENS['metrics']}", "Connection": "close"},
                timeout=10,
            ).text
            for _ in range(6)  # whichever worker scrapes, the same counts, each state once
        ]
    for text in scrapes:
        assert text.count("berth_jobs{") == 5
        assert _jobs_by_state(text) == {
            "queued": 0,
            "running": 0,
            "succeeded": 1,
            "failed": 1,
            "cancelled": 0,
        }
