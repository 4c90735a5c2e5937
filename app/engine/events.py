"""Following one engine's event stream, to keep its ``MetadataCache`` exact.

``EventWatcher`` runs one daemon thread per engine and per process, started on the first cached
read (so never in a gunicorn master before it forks). The thread:

1. reads the engine's clock (the ``Date`` of ``/_ping``) and subscribes to ``/events`` for images
   and containers *since* that moment, so an event in the instant between the engine answering
   the subscription and registering it is replayed, not lost;
2. opens the cache (live, empty) once the engine has accepted the subscription;
3. drops the whole cache on every event that may change a read (``changes_metadata``);
4. closes the cache the moment the stream ends or fails (engine restart, network), and reconnects
   with backoff; after a quiet ``IDLE_RECONNECT`` seconds it resubscribes anyway, so a connection
   that died silently (a half-open TCP link to a remote engine) cannot keep stale entries alive.

What the engine (20.10) emits, checked against a real daemon: tag, untag, delete, pull, push,
load, import and save for images (``docker commit`` adds a ``tag`` when it names the image, and
always a container ``commit``); create, destroy and commit among the container events.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import socket
import threading
import weakref
from collections.abc import Callable
from typing import Any

import requests
import urllib3.exceptions

from app.engine import docker_api
from app.engine.base import EngineConnection
from app.engine.cache import MetadataCache
from app.errors import BerthError

log = logging.getLogger("berth.engine")

IDLE_RECONNECT = 30.0
CONNECT_TIMEOUT = 10.0
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 15.0
EVENT_FILTERS = json.dumps({"type": ["image", "container"]})

# Image events that leave every read unchanged (an export reads the image, nothing more).
QUIET_IMAGE_ACTIONS = frozenset({"save"})
# Container events that neither add nor remove a container nor make an image. Anything not listed
# (create, destroy, commit, prune, and actions future engines may add) drops the cache.
QUIET_CONTAINER_ACTIONS = frozenset(
    {
        "attach",
        "archive-path",
        "copy",
        "detach",
        "die",
        "exec_create",
        "exec_detach",
        "exec_die",
        "exec_start",
        "export",
        "extract-to-dir",
        "health_status",
        "kill",
        "mount",
        "oom",
        "pause",
        "rename",
        "resize",
        "restart",
        "start",
        "stop",
        "top",
        "unmount",
        "unpause",
        "update",
    }
)


def changes_metadata(event: dict[str, Any]) -> bool:
    """Whether an engine event may change an image list, inspect or history answer."""
    kind = event.get("Type")
    # "exec_start: sh -c ..." and "health_status: healthy" carry details after a colon.
    action = str(event.get("Action") or event.get("status") or "").split(":", 1)[0].strip()
    if kind == "image":
        return action not in QUIET_IMAGE_ACTIONS
    if kind == "container":
        return action not in QUIET_CONTAINER_ACTIONS
    return False


class _Idle(Exception):
    """The stream was quiet for ``idle_timeout`` seconds."""


class EventWatcher:
    """The thread that follows one engine's events and keeps its cache exact."""

    def __init__(
        self,
        connection: EngineConnection,
        cache: MetadataCache,
        idle_timeout: float = IDLE_RECONNECT,
    ) -> None:
        self.connection = connection
        self.cache = cache
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._response: requests.Response | None = None
        self._lost = False
        # Called with each event as it arrives (app.services.events); must not block.
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        _WATCHERS.add(self)

    def add_listener(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Hand every event this watcher reads to ``listener(engine_name, event)`` too."""
        with self._lock:
            if listener not in self.listeners:
                self.listeners = [*self.listeners, listener]

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def ensure_started(self) -> None:
        """Start following the engine if not yet done (one attribute read when it is)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._stopping = threading.Event()
                thread = threading.Thread(
                    target=self._run,
                    args=(self._stopping,),
                    name=f"berth-events-{self.connection.name}",
                    daemon=True,
                )
                thread.start()
                self._thread = thread

    def stop(self, timeout: float = 2.0) -> None:
        """Stop following (the cache goes dark); ``ensure_started`` may start again later."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping.set()
            self._abort_stream()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.cache.close()

    def _abort_stream(self) -> None:
        """Wake the thread blocked reading the stream (call with ``_lock`` held)."""
        response = self._response
        sock = docker_api.raw_socket(response) if response is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _reset_after_fork(self) -> None:
        # No thread survives a fork: the child starts dark and starts its own on first use.
        self._lock = threading.Lock()
        self._thread = None
        self._response = None
        self._stopping = threading.Event()
        self.cache.reset_after_fork()

    def _run(self, stopping: threading.Event) -> None:
        delay = BACKOFF_FIRST
        while not stopping.is_set():
            try:
                self._follow(stopping)
                failure: str | None = "the engine ended the event stream"
            except _Idle:
                failure = None
            except (BerthError, requests.RequestException, urllib3.exceptions.HTTPError) as e:
                failure = f"{type(e).__name__}: {e}"
            except (OSError, ValueError) as e:
                failure = f"{type(e).__name__}: {e}"
            except Exception as e:  # the thread must outlive anything the engine sends
                failure = f"{type(e).__name__}: {e}"
                log.exception("engine event watcher failed", extra=self._log_fields())
            if stopping.is_set():
                break
            if failure is None:  # only quiet: resubscribe at once
                delay = BACKOFF_FIRST
                continue
            if not self._lost:
                self._lost = True
                delay = BACKOFF_FIRST
                log.warning(
                    "lost the engine's event stream; metadata reads bypass the cache until it "
                    "is back",
                    extra=self._log_fields(reason=failure),
                )
            if stopping.wait(delay):
                break
            delay = min(delay * 2, BACKOFF_MAX)

    def _follow(self, stopping: threading.Event) -> None:
        """One subscription: open the cache, drop it on each change, until the stream ends."""
        since = self._engine_clock(self.connection.api)
        api = self.connection.stream_api
        params: dict[str, Any] = {"filters": EVENT_FILTERS}
        if since is not None:
            params["since"] = since
        response = docker_api.get(
            api,
            "/events",
            params=params,
            stream=True,
            timeout=(CONNECT_TIMEOUT, self.idle_timeout),
        )
        with self._lock:
            self._response = response
            if stopping.is_set():
                self._abort_stream()
        try:
            docker_api.raise_for_status(api, response)
            if stopping.is_set():
                return
            self.cache.open()
            if self._lost:
                self._lost = False
                log.info("following the engine's events again", extra=self._log_fields())
            try:
                for event in docker_api.json_events(api, response):
                    if not isinstance(event, dict):
                        continue
                    if changes_metadata(event):
                        self.cache.invalidate()
                    for listener in self.listeners:
                        try:
                            listener(self.connection.name, event)
                        except Exception:  # a listener's fault must not stop the cache's upkeep
                            log.exception("engine event listener failed", extra=self._log_fields())
            except (
                requests.RequestException,
                urllib3.exceptions.HTTPError,
                OSError,
            ) as e:
                if not stopping.is_set() and _is_timeout(e):
                    raise _Idle from e
                raise
        finally:
            if not stopping.is_set():  # once stopping, stop() closes it (a successor may run)
                self.cache.close()
            with self._lock:
                if self._response is response:
                    self._response = None
            response.close()

    def _engine_clock(self, api: Any) -> int | None:
        """The engine's time in whole seconds (its ``Date`` header, floored): a safe ``since``."""
        response = docker_api.get(api, "/_ping")  # the metadata client's timeout
        docker_api.raise_for_status(api, response)
        date = response.headers.get("Date")
        if not date:
            return None
        try:
            return int(email.utils.parsedate_to_datetime(date).timestamp())
        except (TypeError, ValueError):
            return None

    def _log_fields(self, **more: Any) -> dict[str, Any]:
        return {"berth": {"engine": self.connection.name, **more}}


def _is_timeout(error: BaseException) -> bool:
    """Whether a read error (urllib3 wraps it differently by version) is a socket timeout."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError | urllib3.exceptions.TimeoutError):
            return True
        if "timed out" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


_WATCHERS: weakref.WeakSet[EventWatcher] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for watcher in list(_WATCHERS):
        watcher._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
