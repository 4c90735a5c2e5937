"""What app.engine.docker_api relies on in the pinned docker-py, requests and urllib3: fails loudly
when an upgrade changes a private name, its signature or its behaviour.

No engine: docker-py talks to a small HTTP server on a unix socket (and on loopback TCP) that
answers as the engine does (JSON, errors with ``message``, chunked progress streams).
"""

from __future__ import annotations

import ast
import inspect
import json
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import docker
import docker.auth
import docker.errors
import pytest
import requests
import urllib3

from app.engine import docker_api

ROOT = Path(__file__).resolve().parents[2]
API_VERSION = "1.41"
# Every private attribute docker_api.py reaches for. A new one must be added here, and given a
# test below, before it is used.
PRIVATE_NAMES = {
    "_url",
    "_get",
    "_post",
    "_post_json",
    "_raise_for_status",
    "_result",
    "_stream_helper",
    "_auth_configs",
    "_get_conn",
    "_put_conn",
    "_fp",
    "_sock",
    "_content",
    "_content_consumed",
}


def _private_attributes(tree: ast.AST) -> set[str]:
    """Names after a dot, or given to getattr/setattr/hasattr, that start with one underscore."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            names.add(node.args[1].value)
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


# --- the fake engine ------------------------------------------------------------------------


class _Engine(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release: threading.Event

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunks(self, *chunks: bytes, hold: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        if hold:
            self.server.release.wait(10)  # type: ignore[attr-defined]
        self.wfile.write(b"0\r\n\r\n")

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            data = b""
            while size := int(self.rfile.readline().strip(), 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.removeprefix(f"/v{API_VERSION}")
        if path == "/_ping":
            self._answer(200, "OK")
        elif path == "/json":
            self._answer(200, {"query": urlsplit(self.path).query})
        elif path == "/missing":
            self._answer(404, {"message": "No such image: missing"})
        elif path == "/conflict":
            self._answer(409, {"message": "conflict: image is in use"})
        elif path == "/events":
            self._chunks(b'{"a": 1}\n{"b"', b': 2}\n{"c": 3}\n')
        elif path == "/hold":
            self._chunks(b'{"first": true}\n', hold=True)
        else:
            self._answer(500, {"message": f"unknown path {path}"})

    def do_POST(self) -> None:
        body = self._body()
        self._answer(
            200,
            {
                "path": urlsplit(self.path).path,
                "query": urlsplit(self.path).query,
                "content_type": self.headers.get("Content-Type"),
                "auth": self.headers.get("X-Registry-Auth"),
                "chunked": "chunked" in self.headers.get("Transfer-Encoding", ""),
                "body": body.decode(),
            },
        )


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True


@pytest.fixture(params=["unix", "tcp"])
def engine(request, tmp_path):
    if request.param == "unix":
        server = _UnixServer(str(tmp_path / "engine.sock"), _Engine)
        base_url = f"unix://{tmp_path}/engine.sock"
    else:
        server = _TcpServer(("127.0.0.1", 0), _Engine)
        base_url = f"tcp://127.0.0.1:{server.server_address[1]}"
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    client = docker.APIClient(base_url=base_url, version=API_VERSION, timeout=7)
    yield client
    client.close()
    server.release.set()
    server.shutdown()
    server.server_close()


# --- pins and confinement ---------------------------------------------------------------------


@pytest.mark.parametrize("package", [docker, requests, urllib3])
def test_the_libraries_are_the_pinned_versions(package):
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins[package.__name__] == package.__version__


def test_docker_api_reaches_for_exactly_the_private_names_tested_here():
    tree = ast.parse((ROOT / "app/engine/docker_api.py").read_text())
    assert _private_attributes(tree) == PRIVATE_NAMES


def test_no_other_module_touches_those_private_names_or_imports_docker():
    for path in sorted((ROOT / "app").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative == "app/engine/docker_api.py":
            continue
        tree = ast.parse(path.read_text())
        assert not _private_attributes(tree) & PRIVATE_NAMES, relative
        if not relative.startswith("app/engine/"):
            for node in ast.walk(tree):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                assert not any(n == "docker" or n.startswith("docker.") for n in names), relative


def test_the_private_methods_keep_their_signatures():
    api = docker.APIClient
    assert _parameters(api._url) == ["self", "pathfmt", "args", "kwargs"]
    assert _parameters(api._post_json) == ["self", "url", "data", "kwargs"]
    assert _parameters(api._raise_for_status) == ["self", "response"]
    assert _parameters(api._result) == ["self", "response", "json", "binary"]
    assert _parameters(api._stream_helper) == ["self", "response", "decode"]
    # _get and _post are wrapped by docker-py's update_headers: (self, url, **kwargs) underneath.
    for method in (api._get, api._post):
        assert _parameters(method) in (["self", "args", "kwargs"], ["self", "url", "kwargs"])
    pool = urllib3.HTTPConnectionPool
    assert _parameters(pool._get_conn) == ["self", "timeout"]
    assert _parameters(pool._put_conn) == ["self", "conn"]
    assert _parameters(requests.adapters.HTTPAdapter.get_connection_with_tls_context)[:3] == [
        "self",
        "request",
        "verify",
    ]


# --- behaviour against the fake engine --------------------------------------------------------


def test_url_is_versioned_and_quotes_its_arguments(engine):
    address = docker_api.url(engine, "/images/{0}/push", "reg:5000/team/a b")
    assert address == f"{engine.base_url}/v{API_VERSION}/images/reg:5000/team/a%20b/push"


def test_get_sends_params_and_the_clients_timeout_unless_told(engine):
    sent = []
    send = engine.send
    engine.send = lambda request, **kwargs: (
        sent.append(kwargs["timeout"]) or send(request, **kwargs)
    )
    response = docker_api.get(engine, "/json", params={"filters": "x"})
    assert docker_api.json_result(engine, response) == {"query": "filters=x"}
    docker_api.get(engine, "/json", timeout=(1, 2)).close()
    docker_api.get(engine, "/json", timeout=None).close()
    assert sent == [7, (1, 2), None]


def test_error_answers_become_docker_py_errors_with_the_engines_message(engine):
    with pytest.raises(docker.errors.NotFound) as missing:
        docker_api.raise_for_status(engine, docker_api.get(engine, "/missing"))
    assert missing.value.explanation == "No such image: missing"
    with pytest.raises(docker.errors.APIError) as conflict:
        docker_api.json_result(engine, docker_api.get(engine, "/conflict"))
    assert conflict.value.status_code == 409
    assert conflict.value.explanation == "conflict: image is in use"
    docker_api.raise_for_status(engine, docker_api.get(engine, "/_ping"))  # 200: nothing


def test_a_refusal_read_off_a_raw_socket_is_checked_as_docker_py_checks_its_own(engine):
    body = json.dumps({"message": "reference does not exist"}).encode()
    response = docker_api.refusal(
        404, "Not Found", "http+docker://localhost/v1.41/images/get", {}, body
    )
    assert response.json() == {"message": "reference does not exist"}
    with pytest.raises(docker.errors.NotFound) as refused:
        docker_api.raise_for_status(engine, response)
    assert refused.value.explanation == "reference does not exist"


def test_json_events_decodes_objects_split_across_chunks(engine):
    response = docker_api.get(engine, "/events", stream=True)
    assert list(docker_api.json_events(engine, response)) == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_json_events_of_an_unstreamed_answer_is_its_one_json_body(engine):
    response = docker_api.get(engine, "/json", stream=True)
    assert list(docker_api.json_events(engine, response)) == [{"query": ""}]


def test_post_sends_the_body_as_produced_and_post_json_sends_an_empty_object(engine):
    chunks = iter([b"ab", b"cd"])
    answer = docker_api.post(
        engine,
        "/images/load",
        params={"quiet": "1"},
        headers={"Content-Type": "application/x-tar"},
        data=chunks,
        stream=True,
    )
    echoed = docker_api.json_result(engine, answer)
    assert echoed["body"] == "abcd" and echoed["chunked"] is True
    assert echoed["query"] == "quiet=1" and echoed["content_type"] == "application/x-tar"
    answer = docker_api.post_json(
        engine,
        "/images/{0}/push",
        "team/app",
        params={"tag": "1"},
        headers={"X-Registry-Auth": "e30="},
    )
    echoed = docker_api.json_result(engine, answer)
    assert echoed["path"] == f"/v{API_VERSION}/images/team/app/push"
    assert echoed["body"] == "{}" and echoed["content_type"] == "application/json"
    assert echoed["auth"] == "e30=" and echoed["query"] == "tag=1"


def test_shutting_the_raw_socket_wakes_a_reader_blocked_on_the_stream(engine):
    response = docker_api.get(engine, "/hold", stream=True)
    sock = docker_api.raw_socket(response)
    assert isinstance(sock, socket.socket)
    events = docker_api.json_events(engine, response)
    assert next(events) == {"first": True}
    threading.Timer(0.2, sock.shutdown, args=(socket.SHUT_RDWR,)).start()
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 -- urllib3 reports the cut in its own words
        for _ in events:
            raise AssertionError("the engine sent nothing more")
    assert time.monotonic() - started < 5
    response.close()
    assert docker_api.raw_socket(response) is None


def test_time_calls_observes_every_call_failed_ones_too(engine, tmp_path):
    seen = []
    docker_api.time_calls(engine, lambda method, path, seconds: seen.append((method, path)))
    docker_api.get(engine, "/_ping").close()
    assert seen == [("GET", f"/v{API_VERSION}/_ping")]
    down = docker.APIClient(base_url=f"unix://{tmp_path}/none.sock", version=API_VERSION)
    docker_api.time_calls(down, lambda method, path, seconds: seen.append((method, path)))
    with pytest.raises(requests.exceptions.ConnectionError):
        docker_api.get(down, "/_ping")
    assert seen[-1] == ("GET", f"/v{API_VERSION}/_ping")
    down.close()


def test_refused_host_credentials_never_reach_a_registry_header(tmp_path, monkeypatch):
    secret = "dXNlcjpzZWNyZXQ="  # user:secret
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {"registry.example": {"auth": secret}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    client = docker.APIClient(base_url=f"unix://{tmp_path}/none.sock", version=API_VERSION)
    assert docker.auth.get_config_header(client, "registry.example") is not None
    docker_api.refuse_host_credentials(client)
    assert docker.auth.get_config_header(client, "registry.example") is None
    client.close()


def test_pool_hooks_see_each_pool_once_and_every_checkout(engine):
    pools = []
    taken, returned = [], []

    def seen(pool):
        pools.append(pool)
        take, give_back = docker_api.pool_checkout(pool)

        def counted_take(*args, **kwargs):
            conn = take(*args, **kwargs)
            taken.append(conn)
            return conn

        def counted_give_back(conn):
            returned.append(conn)
            return give_back(conn)

        docker_api.replace_pool_checkout(pool, counted_take, counted_give_back)

    docker_api.on_each_pool(engine, seen)
    for _ in range(3):
        docker_api.get(engine, "/_ping").close()
    assert len(pools) == 1
    assert len(taken) == 3 and len(returned) == 3
    assert all(hasattr(conn, "sock") and hasattr(conn, "connect") for conn in taken)
