"""gunicorn settings for Berth (every value can be overridden with GUNICORN_CMD_ARGS).

* Worker ``app.server.worker.BerthWorker``: gthread (an archive stream holds a thread, not a
  process, while metadata keeps being served) that reads request heads in its loop and closes
  connections whose head is late (``BERTH_HEADER_TIMEOUT``) or whose body stalls
  (``BERTH_BODY_TIMEOUT``), so slow clients cannot hold every thread.
* ``workers = 2``, one per core: a worker runs Python on one core at a time (the GIL).
* Threads per worker: ``BERTH_THREADS`` for short requests, and ``threads`` (``BERTH_THREADS``
  + ``BERTH_MAX_TRANSFERS`` + ``BERTH_MAX_EVENT_STREAMS``) for requests that may hold one long
  (transfers, event streams, pulls, pushes...): the worker runs each kind on its own threads.
  A plain ``gthread`` worker runs everything on ``threads``.
* ``reuse_port`` (``BERTH_REUSE_PORT``, on by default): a listening socket per worker, so the
  kernel spreads new connections over the workers instead of leaving a burst of them on the one
  that happened to be awake; a worker that dies resets the connections queued on its socket.
* TLS: ``BERTH_TLS_CERT`` and ``BERTH_TLS_KEY`` (PEM files) make gunicorn serve HTTPS itself.
* The heartbeat and metrics files, written on every request, go to ``/dev/shm`` when writable:
  on a disk filesystem they can wait behind the journal while the engine writes an archive.
* No control socket: gunicorn 27 would open one shared by every instance of the user.
"""

import atexit
import os
import shutil
import tempfile

# For the heartbeat and metrics files, written on every request (see the docstring).
_memory_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) else None


def _remove_in(master_pid: int, path: str) -> None:
    if os.getpid() == master_pid:  # workers inherit the exit handler; only the master removes
        shutil.rmtree(path, ignore_errors=True)


# Metrics from every worker are aggregated at scrape time (prometheus_client multiprocess mode);
# the directory must exist before any worker imports the app. One Berth made is removed when
# the master exits, however it exits (a refused address or a worker failing to boot included);
# one the operator set is kept.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _metrics_dir = tempfile.mkdtemp(prefix="berth-metrics-", dir=_memory_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
    atexit.register(_remove_in, os.getpid(), _metrics_dir)


def _long_request_threads() -> int:
    # Imported here: the app's package creates its metrics, which must see the directory above.
    # A configuration the app would refuse stops the master here, in one line (SystemExit).
    from app.server.startup import checked_config

    config = checked_config()
    return (
        config["BERTH_THREADS"] + config["BERTH_MAX_TRANSFERS"] + config["BERTH_MAX_EVENT_STREAMS"]
    )


bind = os.environ.get("BERTH_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("BERTH_WORKERS", "2"))
worker_class = "app.server.worker.BerthWorker"  # gthread, reading request heads in its loop
# Long requests' threads (app.server.worker): as many as archive transfers (app.http.transfers)
# and event streams (app.http.routes.events) may hold, and BERTH_THREADS more for the others.
threads = _long_request_threads()
# Streams may legitimately take long; the worker heartbeat is separate from request duration.
timeout = 120
graceful_timeout = 30
keepalive = 5
worker_tmp_dir = os.environ.get("BERTH_WORKER_TMP_DIR") or _memory_dir
accesslog = None  # Berth writes its own JSON access line per request
control_socket_disable = True
certfile = os.environ.get("BERTH_TLS_CERT") or None  # both set: gunicorn serves HTTPS
keyfile = os.environ.get("BERTH_TLS_KEY") or None
reuse_port = os.environ.get("BERTH_REUSE_PORT", "true").lower() in ("1", "true", "yes")
errorlog = "-"
loglevel = os.environ.get("BERTH_LOG_LEVEL", "info").lower()


def on_starting(server):
    # The addresses gunicorn binds (-b, GUNICORN_CMD_ARGS) and every engine, checked once here.
    from app.server.startup import start

    start(server)


def post_worker_init(worker):
    # Each worker follows every engine's events from its start (one connection per engine and
    # worker, which the metadata cache needs anyway), so a GET /v1/events resumed with
    # Last-Event-ID finds the same buffered events whichever worker it reaches.
    from app.http.accessors import services

    found = services(getattr(worker.wsgi, "__wrapped__", worker.wsgi))  # Berth's worker wraps it
    if found.events is not None and found.events.capacity:
        found.events.hub.follow(found.engines.names)
    # Every image's layer list read now, in one go: the worker's first usage or layers view
    # then reads none of them one at a time.
    found.engines.warm(found.engines.names)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
