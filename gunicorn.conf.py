"""gunicorn settings for Berth (every value can be overridden with GUNICORN_CMD_ARGS).

Worker class: ``gthread``. Archive downloads and uploads hold a request for as long as gigabytes
take to stream; with sync workers each one would block a whole process. Threads keep serving
metadata while streams run, need no monkey-patching of docker-py's unix-socket transport (as
gevent would), and measured at least as fast on a 2-core machine (see README, "Performance").
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
threads = int(os.environ.get("BERTH_THREADS", "16"))
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
