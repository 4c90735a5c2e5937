"""One write per small response: the status line and headers leave with the first body bytes.

gunicorn sends a response's head in one ``send`` and each piece of its body in another: for a
JSON answer of a few hundred bytes, two system calls, two segments and two reads for the client.
``OneWriteResponse`` holds the head back until the first body bytes and sends both at once (up to
``ONE_WRITE_MAX`` of them: a larger piece would be copied for nothing). An empty first write (a
relayed archive's) or a body-less answer (HEAD, 204, 304) still sends the head at once.

``one_write_app`` gives the responses of Berth's worker that class without touching gunicorn's
module globals: gthread calls the application with the response's bound ``start_response``, and
the wrapper switches that one response to the subclass before the application starts it. Both
the call and ``Response``'s hooks (``send_headers``, ``_emit_body``, ``default_headers``) are
pinned with gunicorn's version by ``tests/unit/test_gunicorn_contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.http import wsgi

ONE_WRITE_MAX = 64 * 1024


class OneWriteResponse(wsgi.Response):
    """gunicorn's response, whose head goes out with the first bytes of its body."""

    _staging = False
    _head: bytes | None = None

    def write(self, arg: bytes) -> None:
        self._staging = not self.headers_sent and bool(arg)
        try:
            super().write(arg)  # its send_headers() stages the head; its _emit_body() sends
        finally:
            self._staging = False
            if self._head is not None:  # no body bytes went out after all
                self._send_head()

    def send_headers(self) -> None:
        if self.headers_sent or not self._staging:
            super().send_headers()
            return
        lines = self.default_headers()  # as gunicorn's send_headers() builds them
        lines.extend(f"{k}: {v}\r\n" for k, v in self.headers)
        self._head = ("".join(lines) + "\r\n").encode("latin-1")
        self.headers_sent = True

    def _emit_body(self, data: bytes) -> None:
        if self._head is not None and len(data) > ONE_WRITE_MAX:
            self._send_head()
        head, self._head = self._head, None
        if head is None:
            super()._emit_body(data)
        elif self.chunked:
            self.sock.sendall(b"%s%X\r\n%s\r\n" % (head, len(data), data))
        else:
            self.sock.sendall(head + data)

    def _send_head(self) -> None:
        head, self._head = self._head, None
        self.sock.sendall(head)


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def one_write_app(app: WsgiApp) -> WsgiApp:
    """``app``, whose gunicorn responses write their head with the first body bytes."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        response = getattr(start_response, "__self__", None)
        if type(response) is wsgi.Response:  # exactly gunicorn's: a subclass may differ
            response.__class__ = OneWriteResponse
        return app(environ, start_response)

    wrapped.__wrapped__ = app  # type: ignore[attr-defined]  # the application, for hooks
    return wrapped
