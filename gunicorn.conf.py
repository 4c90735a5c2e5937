"""gunicorn settings for Berth (every value can be overridden with GUNICORN_CMD_ARGS).

* Worker class ``app.server.worker.BerthWorker``: gthread (archive streams hold a thread, not a
  process, while metadata keeps being served), whose workers share new connections out, send
  each small response in one write, and read request heads in their loop, closing connections
  whose head is late (``BERTH_HEADER_TIMEOUT``) or whose body stalls (``BERTH_BODY_TIMEOUT``).
* ``workers = 2``, one per core: a worker runs Python on one core at a time (the GIL).
* Threads per worker: ``BERTH_THREADS`` (8) for short requests plus ``BERTH_MAX_TRANSFERS`` (8)
  for archive transfers, which never take more (``app.http.transfers``): short requests always
  find a thread, however many archives stream.
* TLS: ``BERTH_TLS_CERT`` and ``BERTH_TLS_KEY`` (PEM files) make gunicorn serve HTTPS itself.
* ``reuse_port`` only with ``BERTH_REUSE_PORT=true`` (a listening socket per worker; a worker
  that dies then resets the connections waiting in its own queue, README "Operations").
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


def _max_transfers() -> int:
    # Imported here: the app's package creates its metrics, which must see the directory above.
    from app.config import load_config

    return load_config()["BERTH_MAX_TRANSFERS"]


bind = os.environ.get("BERTH_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("BERTH_WORKERS", "2"))
worker_class = "app.server.worker.BerthWorker"  # gthread, sharing connections out evenly
# Short requests' threads, plus as many as archive transfers may hold (app.http.transfers).
threads = int(os.environ.get("BERTH_THREADS", "8")) + _max_transfers()
# Streams may legitimately take long; the worker heartbeat is separate from request duration.
timeout = 120
graceful_timeout = 30
keepalive = 5
worker_tmp_dir = os.environ.get("BERTH_WORKER_TMP_DIR") or _memory_dir
accesslog = None  # Berth writes its own JSON access line per request
control_socket_disable = True
certfile = os.environ.get("BERTH_TLS_CERT") or None  # both set: gunicorn serves HTTPS
keyfile = os.environ.get("BERTH_TLS_KEY") or None
reuse_port = os.environ.get("BERTH_REUSE_PORT", "").lower() in ("1", "true", "yes")
errorlog = "-"
loglevel = os.environ.get("BERTH_LOG_LEVEL", "info").lower()


def on_starting(server):
    from app.server.startup import announce, refuse_taken_addresses

    if server.cfg.reuse_port:
        refuse_taken_addresses(server.cfg.address)
    announce(bind, scheme="https" if server.cfg.is_ssl else "http")


def pre_fork(server, worker):
    from app.server.worker import give_slot

    give_slot(server, worker)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    from app.server.worker import free_slot

    free_slot(server, worker)
    multiprocess.mark_process_dead(worker.pid)
