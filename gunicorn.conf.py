"""gunicorn settings for Berth (every value can be overridden with GUNICORN_CMD_ARGS).

Chosen from ``bench/load.py`` runs on a 2-core machine (README, "Performance: fast metadata
reads that are never stale"):

* Worker class ``gthread``. Archive downloads and uploads hold a request for as long as gigabytes
  take to stream; a sync worker would be blocked whole by each (and keeps no connection alive).
  gevent used as much CPU per request but its p99 went to 0.6-0.8 s under load (a greenlet busy
  with Python work stalls every other one in its worker) and it would monkey-patch docker-py's
  transport; threads keep serving metadata while streams run. The class is
  ``app.gunicorn_worker.BerthWorker``: gthread, whose workers share new connections out (none
  takes more than ``threads`` over the worker holding fewest) and send each small response in
  one write. With plain gthread wrk's 16 connections landed 16/0 on one worker in some runs
  (2,300 inspects/s against 8,000); with it, 8/8 to 12/5 in every run since.
* ``workers = 2``: one per core. A worker runs Python on one core at a time (the GIL), so more
  workers than cores only add memory and context switches.
* ``threads = 8``: cached metadata is answered before Flask (``app.api.cached_reads``) in about
  270 us of CPU per request, most of it gunicorn's own HTTP handling. With 8 threads the
  inspect throughput was the highest measured (4: about 8% lower, 16: about 13% lower, 20 s
  runs), and 3 or 4 workers raised the p99 under a running save to 170 ms (more processes than
  cores). Each archive transfer holds a thread for its whole length, so 8 per worker (16
  requests in flight) leaves room for several transfers beside metadata; raise BERTH_THREADS if
  many run at once.
* ``reuse_port`` only with ``BERTH_REUSE_PORT=true``. Each worker then listens on a socket of
  its own and the kernel spreads new connections over them. (Before the worker class above, on
  one shared socket the worker already awake won most accepts: wrk's 16 connections were split
  1/15, 2/14, 14/2 and 6/10 in four runs, and inspect went from 5,065 to 9,299 req/s with the
  split; with a socket per worker, 8,700-9,440 in five runs of six.) It is off by
  default because a worker that dies takes the connections waiting in its own queue with it
  (they are reset) unless the host sets ``net.ipv4.tcp_migrate_req=1``; on a shared socket the
  other workers take them. With it on, the master first checks that the address is free
  (``app.startup.refuse_taken_addresses``): ``SO_REUSEPORT`` would otherwise let a second
  server of the same user share the port instead of failing.
* The worker heartbeat file (``worker_tmp_dir``, or ``BERTH_WORKER_TMP_DIR``) and the metrics'
  files go to ``/dev/shm`` when it is writable. gunicorn changes the heartbeat file's times once
  per turn of a worker's loop and every request writes the metrics' mapped files; on a disk
  filesystem either can wait behind the journal while the engine writes an archive to the same
  disk, and the whole worker waits with it (gunicorn's documentation of ``worker_tmp_dir``
  warns of it). Measured here, the inspect p99 under a running save stayed within the runs'
  noise (64 connections: 53.7 and 101.5 ms before, 44.9-67.8 ms in five runs after).
* No control socket: gunicorn 27 would open one at the same path for every instance of a user
  (``~/.gunicorn/gunicorn.ctl``), from which workers can be added, removed or reloaded; Berth
  needs none. Remove ``control_socket_disable`` to manage a server with ``gunicornc``.
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

bind = os.environ.get("BERTH_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("BERTH_WORKERS", "2"))
worker_class = "app.gunicorn_worker.BerthWorker"  # gthread, sharing connections out evenly
threads = int(os.environ.get("BERTH_THREADS", "8"))
# Streams may legitimately take long; the worker heartbeat is separate from request duration.
timeout = 120
graceful_timeout = 30
keepalive = 5
worker_tmp_dir = os.environ.get("BERTH_WORKER_TMP_DIR") or _memory_dir
accesslog = None  # Berth writes its own JSON access line per request
control_socket_disable = True
reuse_port = os.environ.get("BERTH_REUSE_PORT", "").lower() in ("1", "true", "yes")
errorlog = "-"
loglevel = os.environ.get("BERTH_LOG_LEVEL", "info").lower()


def on_starting(server):
    from app.startup import announce, refuse_taken_addresses

    if server.cfg.reuse_port:
        refuse_taken_addresses(server.cfg.address)
    announce(bind)


def pre_fork(server, worker):
    from app.gunicorn_worker import give_slot

    give_slot(server, worker)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    from app.gunicorn_worker import free_slot

    free_slot(server, worker)
    multiprocess.mark_process_dead(worker.pid)
