"""gunicorn settings for Berth (every value can be overridden with GUNICORN_CMD_ARGS).

Chosen from ``bench/load.py`` runs on a 2-core machine (README, "Performance: fast metadata
reads that are never stale"):

* Worker class ``gthread``. Archive downloads and uploads hold a request for as long as gigabytes
  take to stream; a sync worker would be blocked whole by each (and keeps no connection alive).
  gevent used as much CPU per request but its p99 went to 0.6-0.8 s under load (a greenlet busy
  with Python work stalls every other one in its worker) and it would monkey-patch docker-py's
  transport; threads keep serving metadata while streams run.
* ``workers = 2``: one per core. A worker runs Python on one core at a time (the GIL), so more
  workers than cores only add memory and context switches.
* ``threads = 8``: metadata answers come from the in-memory cache, so a request is CPU work under
  the worker's GIL. CPU per request did not change from 2 to 16 threads (450-500 us), but the
  tail grew with the number of threads taking turns on one GIL: inspect at 16 connections had
  a p99 of 25 ms with 4 threads, 67 ms with 8 and 187 ms with 16 in the same minute (a single
  worker at 8 connections: 8 ms with 2 threads, 14 ms with 4, 26 ms with 16). Each archive
  transfer holds a thread for its whole length, so 8 per worker (16 requests in flight) leaves
  room for several transfers beside metadata; raise BERTH_THREADS if many run at once.
"""

import os
import shutil
import tempfile

# Metrics from every worker are aggregated at scrape time (prometheus_client multiprocess mode);
# the directory must exist before any worker imports the app, and is removed at exit.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="berth-metrics-")

bind = os.environ.get("BERTH_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("BERTH_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("BERTH_THREADS", "8"))
# Streams may legitimately take long; the worker heartbeat is separate from request duration.
timeout = 120
graceful_timeout = 30
keepalive = 5
accesslog = None  # Berth writes its own JSON access line per request
errorlog = "-"
loglevel = os.environ.get("BERTH_LOG_LEVEL", "info").lower()


def on_starting(server):
    from app.startup import announce

    announce(bind)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""), ignore_errors=True)
