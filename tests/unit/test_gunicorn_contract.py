"""What app.server.worker relies on in the pinned gunicorn: fails loudly when an upgrade
changes it (names, signatures, who calls what, what the parser reads from)."""

from __future__ import annotations

import ast
import inspect
import re
import socket
import threading
import time
from pathlib import Path

import gunicorn
import pytest
from gunicorn import http
from gunicorn import sock as gunicorn_sock
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.unreader import SocketUnreader, Unreader
from gunicorn.workers import base, gthread

from app.server import one_write
from app.server import worker as worker_module
from app.server.one_write import ONE_WRITE_MAX, OneWriteResponse, one_write_app
from app.server.worker import (
    BerthWorker,
    ClientStalled,
    ThreadLanes,
    TimedUnreader,
    head_is_whole,
)

ROOT = Path(__file__).resolve().parents[2]


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_gunicorn_is_the_pinned_version():
    pinned = [
        line.split("==", 1)[1].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.startswith("gunicorn==")
    ]
    assert pinned == [gunicorn.__version__]


def test_the_methods_the_worker_overrides_keep_their_names_and_signatures():
    worker = gthread.ThreadWorker
    assert _parameters(worker.enqueue_req) == ["self", "conn"]
    assert _parameters(worker.murder_pending) == ["self"]
    assert _parameters(worker.handle_request) == ["self", "req", "conn"]
    assert _parameters(worker.handle_exit) == ["self", "sig", "frame"]
    assert _parameters(worker.init_process) == ["self"]
    assert _parameters(worker.run) == ["self"]
    assert _parameters(worker.check_config) == ["cfg", "log"]  # a classmethod
    assert _parameters(gthread.TConn.__init__) == ["self", "cfg", "sock", "client", "server"]
    assert _parameters(SocketUnreader.chunk) == ["self", "size_hint"]
    assert _parameters(Unreader.take_buffered) == ["self"]
    assert _parameters(Unreader.unread) == ["self", "data"]
    assert _parameters(http.get_parser)[:3] == ["cfg", "source", "source_addr"]
    assert _parameters(gunicorn_sock.ssl_context) == ["conf"]
    for name in ("enqueue_req", "murder_pending", "handle_request", "check_config"):
        assert name in vars(BerthWorker), name  # still overridden here


def test_every_way_a_request_reaches_a_thread_goes_through_enqueue_req():
    # New connections, kept-alive ones that became readable, and requests read ahead.
    for method in ("accept", "on_client_socket_readable", "finish_request"):
        source = inspect.getsource(getattr(gthread.ThreadWorker, method))
        assert "self.enqueue_req(conn)" in source, method
    submitting = [
        name
        for name, member in vars(gthread.ThreadWorker).items()
        if callable(member) and "tpool.submit" in inspect.getsource(member)
    ]
    assert submitting == ["enqueue_req"]
    # The loop expires waiting connections at every turn, while serving and while stopping.
    assert inspect.getsource(gthread.ThreadWorker.run).count("self.murder_pending()") == 2
    # A thread does not wait for a first byte on a connection marked ready.
    assert "not conn.data_ready" in inspect.getsource(gthread.ThreadWorker.handle)
    # The worker counts its connections in nr_conns: one accepted adds one, a closed one takes
    # one off (a head dropped by the loop is taken off here).
    assert "self.nr_conns += 1" in inspect.getsource(gthread.ThreadWorker.accept)
    assert "self.nr_conns -= 1" in inspect.getsource(gthread.ThreadWorker.finish_request)


def test_gthread_makes_its_pool_with_the_hook_and_calls_it_only_to_submit_and_shut_down():
    # app.server.worker.ThreadLanes stands in for the pool: it has what gthread calls, no more.
    assert "self.tpool = self.get_thread_pool()" in inspect.getsource(
        gthread.ThreadWorker.init_process
    )
    assert "Override this method" in (gthread.ThreadWorker.get_thread_pool.__doc__ or "")
    assert "self.tpool.submit(self.handle, conn)" in inspect.getsource(
        gthread.ThreadWorker.enqueue_req
    )
    called = set(re.findall(r"self\.tpool\.(\w+)", inspect.getsource(gthread)))
    assert called == {"submit", "shutdown"}
    assert "get_thread_pool" in vars(BerthWorker)
    # The worker marks each connection for the lanes (berth_long): TConn takes new attributes.
    assert "__slots__" not in vars(gthread.TConn)


class _Conn:
    def __init__(self, long: bool | None) -> None:
        if long is not None:
            self.berth_long = long


def test_the_lanes_run_long_requests_and_short_ones_on_pools_of_their_own():
    lanes = ThreadLanes(short_threads=2, long_threads=3)
    release = threading.Event()
    running: dict[str, set[str]] = {"short": set(), "long": set()}

    def handle(conn: _Conn) -> str:
        kind = "long" if getattr(conn, "berth_long", False) else "short"
        running[kind].add(threading.current_thread().name)
        release.wait(5)
        return threading.current_thread().name

    try:
        held = [lanes.submit(handle, _Conn(long)) for long in (False, None, True, True, True)]
        queued = lanes.submit(handle, _Conn(False))  # a third short one: both short threads busy
        deadline = time.monotonic() + 5
        while len(running["short"]) + len(running["long"]) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(running["short"]) == 2 and len(running["long"]) == 3
        assert not queued.done()
        release.set()
        names = [future.result(5) for future in [*held, queued]]
        assert all(name.startswith("berth-short") for name in names[:2] + names[5:])
        assert all(name.startswith("berth-long") for name in names[2:5])
    finally:
        release.set()
        lanes.shutdown(wait=True)
    for pool in (lanes.short, lanes.long):
        with pytest.raises(RuntimeError):  # both shut down
            pool.submit(print)


def _assigned_attributes_of_gunicorn(source: str) -> list[str]:
    """``name.attr = ...`` (or ``setattr(name, ...)``) in ``source`` where ``name`` is gunicorn."""
    tree = ast.parse(source)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gunicorn"):
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {
                (alias.asname or alias.name).split(".")[0]
                for alias in node.names
                if alias.name.startswith("gunicorn")
            }
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr":
            targets = node.args[:1]
        for target in targets:
            root = target.value if isinstance(target, ast.Attribute) else target
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in names and target is not root:
                found.append(ast.unparse(target))
            elif isinstance(node, ast.Call) and isinstance(root, ast.Name) and root.id in names:
                found.append(ast.unparse(node))
    return found


def test_berth_replaces_nothing_in_gunicorns_modules():
    # Berth subclasses gthread and overrides its methods; gunicorn's globals stay its own.
    for path in (Path(worker_module.__file__), Path(one_write.__file__), ROOT / "gunicorn.conf.py"):
        assert _assigned_attributes_of_gunicorn(path.read_text()) == [], path
    # The check itself finds such replacements.
    replacing = "from gunicorn.http import wsgi\nimport gunicorn.util\nwsgi.Response = object\n"
    replacing += "gunicorn.util.close = None\nsetattr(wsgi, 'create', None)\n"
    assert _assigned_attributes_of_gunicorn(replacing) == [
        "wsgi.Response",
        "gunicorn.util.close",
        "setattr(wsgi, 'create', None)",
    ]


def test_a_connection_with_a_parser_is_not_wrapped_again_by_its_thread():
    cfg = Config()
    cfg.set("certfile", "cert.pem")  # is_ssl: init() would wrap a connection without parser
    cfg.set("keyfile", "key.pem")
    ours, theirs = socket.socketpair()
    with ours, theirs:
        conn = gthread.TConn(cfg, ours, ("127.0.0.1", 1), ("127.0.0.1", 2))
        parser = http.get_parser(cfg, ours, ("127.0.0.1", 1))
        conn.parser = parser
        conn.init()
        assert conn.parser is parser and conn.sock is ours and conn.initialized


def test_the_parser_reads_the_head_and_body_through_its_unreader():
    cfg = Config()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        parser = http.get_parser(cfg, ours, ("127.0.0.1", 1))
        parser.unreader = TimedUnreader(ours, body_timeout=0.5)
        parser.unreader.unread(b"POST /x HTTP/1.1\r\nHost: b\r\nContent-Length: 10\r\n\r\nabc")
        request = next(parser)
        assert request.path == "/x"
        theirs.sendall(b"defg")  # then nothing: three bytes short
        started = time.monotonic()
        with pytest.raises(ClientStalled):  # the read gives up after body_timeout
            request.body.read(10)
        assert time.monotonic() - started < 2
        assert ours.gettimeout() is None  # the socket is left as the server had it
        # gunicorn's keep-alive drain takes the stall for a failed drain: the connection closes.
        assert parser.finish_body(deadline=time.monotonic() + 5) is False


def test_a_head_read_in_a_thread_stops_at_its_deadline():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        unreader = TimedUnreader(ours, body_timeout=60)
        unreader.deadline = time.monotonic() + 0.3
        started = time.monotonic()
        with pytest.raises(ClientStalled):
            unreader.read()
        assert time.monotonic() - started < 2


def test_a_head_is_whole_at_its_empty_line_or_when_the_parser_would_refuse_it():
    assert not head_is_whole(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert not head_is_whole(b"GET / HTTP/1.1\r\nHost: x\r\n\r")
    assert head_is_whole(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head_is_whole(b"GET / HTTP/1.1\r\n\r\nbody")
    assert head_is_whole(b"GET / HTTP/1.1\nHost: x")  # a bare LF: the parser refuses it


def test_the_worker_refuses_http2_and_other_protocols():
    cfg = Config()
    cfg.set("http_protocols", "h2,h1")
    with pytest.raises(RuntimeError, match="HTTP/1.1 only"):
        BerthWorker.check_config(cfg, _Log())


class _Log:
    def warning(self, *args) -> None:
        pass


# ---- one write per response (app.server.one_write) ----


def test_gthread_calls_the_application_with_the_responses_own_start_response():
    # one_write_app finds the response through start_response.__self__.
    source = inspect.getsource(gthread.ThreadWorker.handle_request)
    assert "wsgi.create(req, conn.sock" in source
    assert "self.wsgi(environ, resp.start_response)" in source
    assert "resp.write(item)" in source and "resp.close()" in source
    assert "self.wsgi = self.app.wsgi()" in inspect.getsource(base.Worker.load_wsgi)
    assert _parameters(base.Worker.load_wsgi) == ["self"]
    assert "load_wsgi" in vars(BerthWorker)


def test_the_response_hooks_one_write_relies_on_are_there():
    assert _parameters(wsgi.Response.write) == ["self", "arg"]
    assert _parameters(wsgi.Response.send_headers) == ["self"]
    assert _parameters(wsgi.Response._emit_body) == ["self", "data"]
    assert _parameters(wsgi.Response.default_headers) == ["self"]
    write = inspect.getsource(wsgi.Response.write)
    assert write.index("self.send_headers()") < write.index("self._emit_body(")
    assert "self.headers_sent = True" in inspect.getsource(wsgi.Response.send_headers)
    assert "util.write(self.sock, data, self.chunked)" in inspect.getsource(
        wsgi.Response._emit_body
    )


class _RecordingSocket:
    """A socket whose sends are recorded (the bytes still go to the real socket)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))
        self.sock.sendall(data)

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


def _serve(app, request: bytes, *, wrap: bool) -> tuple[list[bytes], bytes]:
    """``app`` answers ``request`` as gthread has it answered: (the sends, the bytes sent)."""
    cfg = Config()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(request)
        parser = http.get_parser(cfg, ours, ("127.0.0.1", 1))
        req = next(parser)
        recording = _RecordingSocket(ours)
        resp, environ = wsgi.create(req, recording, ("127.0.0.1", 1), ("127.0.0.1", 2), cfg)
        application = one_write_app(app) if wrap else app
        for item in application(environ, resp.start_response):
            resp.write(item)
        resp.close()
        ours.shutdown(socket.SHUT_WR)
        received = b""
        while data := theirs.recv(1 << 20):
            received += data
    return recording.sends, received


def _app(*pieces: bytes, headers: tuple[tuple[str, str], ...] = ()):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json"), *headers])
        return list(pieces)

    return app


def _without_date(answer: bytes) -> bytes:
    return b"\r\n".join(
        line for line in answer.split(b"\r\n") if not line.lower().startswith(b"date:")
    )


GET = b"GET /v1/images HTTP/1.1\r\nHost: b\r\n\r\n"


def test_a_small_answer_leaves_in_one_write_with_the_same_bytes_as_gunicorns():
    app = _app(b'{"a": 1}', headers=(("Content-Length", "8"),))
    sends, received = _serve(app, GET, wrap=True)
    assert len(sends) == 1 and sends[0].endswith(b'\r\n\r\n{"a": 1}')
    plain_sends, plain = _serve(app, GET, wrap=False)
    assert len(plain_sends) == 2  # gunicorn's own: the head, then the body
    assert _without_date(received) == _without_date(plain)


def test_a_chunked_answer_frames_its_first_piece_with_the_head():
    app = _app(b"one", b"", b"three")  # no length: chunked; an empty piece is skipped
    sends, received = _serve(app, GET, wrap=True)
    assert sends[0].endswith(b"\r\n\r\n3\r\none\r\n")
    assert sends[1:] == [b"5\r\nthree\r\n", b"0\r\n\r\n"]
    _, plain = _serve(app, GET, wrap=False)
    assert _without_date(received) == _without_date(plain)


def test_a_large_first_piece_an_empty_one_and_a_head_request_send_the_head_first():
    big = b"x" * (ONE_WRITE_MAX + 1)
    sends, _ = _serve(_app(big, headers=(("Content-Length", str(len(big))),)), GET, wrap=True)
    assert [len(s) for s in sends][1:] == [len(big)] and sends[0].endswith(b"\r\n\r\n")
    sends, _ = _serve(_app(b"", b"later"), GET, wrap=True)  # a relay's empty first write
    assert sends[0].endswith(b"\r\n\r\n") and sends[1] == b"5\r\nlater\r\n"
    head = b"HEAD /v1/images HTTP/1.1\r\nHost: b\r\n\r\n"
    sends, received = _serve(_app(b"{}", headers=(("Content-Length", "2"),)), head, wrap=True)
    assert len(sends) == 1 and received.endswith(b"\r\n\r\n")  # the head, no body


def test_only_gunicorns_own_response_class_is_switched():
    seen = []

    def app(environ, start_response):
        seen.append(type(start_response.__self__))
        start_response("204 No Content", [])
        return []

    _serve(app, GET, wrap=True)
    assert seen == [OneWriteResponse]
    assert one_write_app(app).__wrapped__ is app

    class Other(wsgi.Response):
        pass

    response = Other.__new__(Other)
    one_write_app(lambda environ, start_response: [])({}, response.start_response)
    assert type(response) is Other
