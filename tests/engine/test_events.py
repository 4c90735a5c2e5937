"""GET /v1/events: image events and job state changes, live, as SSE or NDJSON."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time

import pytest
import requests

from app import create_app
from app.http.accessors import services
from app.http.routes.events import _visible
from app.jobs.workers import Worker
from tests.engine.test_cache import docker_cli
from tests.support.gunicorn import gunicorn_server
from tests.support.images import unique
from tests.support.tokens import TOKENS, auth, token_entries


class Listener:
    """Reads an event stream on a thread; ``next_matching`` waits for one event."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.events: queue.Queue[dict] = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        event_id = None
        try:
            for line in self.response.iter_lines(chunk_size=1, decode_unicode=True):
                self.lines.append(line)
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    event = json.loads(line[6:])
                    event["sse_id"] = event_id
                    self.events.put(event)
                elif line.startswith("{"):
                    self.events.put(json.loads(line))
        except (requests.RequestException, ValueError, AttributeError):
            pass

    def next_matching(self, predicate, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                return None
            if predicate(event):
                return event
        return None

    def close(self) -> None:
        # Wake the reading thread first: closing under its read would wait for the next line.
        sock = getattr(getattr(self.response.raw, "connection", None), "sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        self.response.close()


def listen(url: str, token: str = "read", **headers: str) -> Listener:
    answer = requests.get(url, headers={**auth(token), **headers}, stream=True, timeout=(5, 60))
    assert answer.status_code == 200, answer.text
    return Listener(answer)


def tagged(name: str):
    return lambda e: e["type"] == "image" and e["action"] == "tag" and e["name"] == name


def test_a_docker_cli_tag_shows_on_the_stream_within_a_second_and_resumes(
    harness, tmp_path, base_image
):
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    first, second = unique("berth-events") + ":1", unique("berth-events") + ":2"
    with gunicorn_server(env, tokens=token_entries()) as server:
        stream = listen(f"{server.url}/v1/events")
        try:
            assert stream.response.headers["Content-Type"].startswith("text/event-stream")
            time.sleep(0.5)  # the worker follows the engine from its start; let it settle
            docker_cli(harness, "tag", base_image, first)
            told = time.monotonic()
            event = stream.next_matching(tagged(first), timeout=5)
            assert event is not None, stream.lines
            assert time.monotonic() - told < 1.0
            assert event["engine"] == "local" and event["image"].startswith("sha256:")
            assert event["sse_id"] == event["id"]
        finally:
            stream.close()
        # While nobody listens: another tag. A stream resumed after the first one's id gets it
        # (from whichever worker answers: every worker follows the engine from its start).
        docker_cli(harness, "tag", base_image, second)
        for _ in range(4):  # land on both workers
            resumed = listen(f"{server.url}/v1/events", **{"Last-Event-ID": event["id"]})
            try:
                again = resumed.next_matching(tagged(second), timeout=5)
                assert again is not None, resumed.lines
                assert resumed.next_matching(tagged(first), timeout=0.3) is None
            finally:
                resumed.close()
        docker_cli(harness, "rmi", first, second)


def test_ndjson_engine_filter_and_token_globs(config, base_image, harness):
    config["BERTH_ENGINES"] = {
        "local": {"host": harness["docker_host"]},
        "other": {"host": harness["docker_host"]},
    }
    config["BERTH_TOKENS"] = [
        *token_entries(),
        {"name": "only-other", "token": "t" * 20, "scopes": ["read"], "engines": ["oth*"]},
    ]
    app = create_app(config)
    client = app.test_client()
    try:
        limited = {"Authorization": "Bearer " + "t" * 20}
        refused = client.get("/v1/events?engine=local", headers=limited)
        assert refused.status_code == 403 and refused.json["code"] == "ENGINE_FORBIDDEN"
        missing = client.get("/v1/events?engine=nope", headers=auth("read"))
        assert missing.status_code == 404
        assert client.get("/v1/events?type=nope", headers=auth("read")).status_code == 400
        assert client.get("/v1/events", headers=auth("push")).status_code == 403

        name = unique("berth-events") + ":nd"
        hub = services(app).events.hub
        answer = client.get(
            "/v1/events", headers={**limited, "Accept": "application/x-ndjson"}, buffered=False
        )
        assert answer.status_code == 200 and answer.mimetype == "application/x-ndjson"
        body = iter(answer.response)
        assert next(body) == b"\n"
        time.sleep(0.5)
        docker_cli(harness, "tag", base_image, name)
        try:
            seen: list[dict] = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(e["name"] == name for e in seen):
                chunk = next(body)
                seen += [json.loads(line) for line in chunk.splitlines() if line.strip()]
            # Both engine names reach the same daemon: the token sees only "other"'s copy.
            assert [e["engine"] for e in seen if e["name"] == name] == ["other"]
            assert hub.size > 0
        finally:
            answer.close()
            docker_cli(harness, "rmi", name)
    finally:
        services(app).engines.close()


def test_job_state_changes_are_told_to_their_owner_only(app, client, headers, base_image):
    hub = services(app).events.hub
    hub.follow(["local"])
    position, _ = hub.start(None)
    store = services(app).jobs.store
    record = store.create("pull", "write-token", base_image, Worker.current(), engine="local")
    assert store.start(record["id"])
    store.finish(record["id"], "succeeded", result={"id": "sha256:x"})
    deadline = time.monotonic() + 5
    told: list[dict] = []
    while time.monotonic() < deadline and len(told) < 3:
        position, fresh = hub.wait(position, 1)
        told += [e for e in fresh if e["type"] == "job" and e["job"]["id"] == record["id"]]
    assert [e["action"] for e in told] == ["queued", "running", "succeeded"]
    assert told[0]["job"] == {"id": record["id"], "kind": "pull", "target": base_image}

    writer = services(app).authorizer.tokens.authenticate(TOKENS["write"])
    reader = services(app).authorizer.tokens.authenticate(TOKENS["read"])
    assert _visible(writer, ["local"], told[0])
    assert not _visible(reader, ["local"], told[0])
    assert not _visible(writer, ["other"], told[0])


def test_streams_past_the_limit_are_refused_at_once(config):
    config["BERTH_MAX_EVENT_STREAMS"] = 1
    app = create_app(config)
    client = app.test_client()
    try:
        held = client.get("/v1/events", headers=auth("read"), buffered=False)
        assert held.status_code == 200
        refused = client.get("/v1/events", headers=auth("read"))
        assert refused.status_code == 503
        assert refused.json["code"] == "TOO_MANY_EVENT_STREAMS"
        assert refused.headers["Retry-After"]
        held.close()  # gives the slot back
        again = client.get("/v1/events", headers=auth("read"), buffered=False)
        assert again.status_code == 200
        again.close()
    finally:
        services(app).engines.close()


@pytest.mark.parametrize("bad", ["abc", "1" * 30])
def test_a_malformed_last_event_id_is_400(client, bad):
    answer = client.get("/v1/events", headers={**auth("read"), "Last-Event-ID": bad})
    assert answer.status_code == 400


def test_open_streams_end_when_gunicorn_stops_gracefully(harness, tmp_path):
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    with gunicorn_server(env, workers=1, tokens=token_entries()) as server:
        answer = requests.get(
            f"{server.url}/v1/events", headers=auth("read"), stream=True, timeout=(5, 60)
        )
        assert answer.status_code == 200
        asked = time.monotonic()
        server.stop()  # SIGTERM: the worker ends its streams instead of waiting for them
        assert time.monotonic() - asked < 10
        assert b"".join(answer.iter_content(chunk_size=None)).startswith(b"retry:")
