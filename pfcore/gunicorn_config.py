"""gunicorn settings and server hooks for ``pfcore serve`` (``--config python:pfcore.gunicorn_config``).

prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by
``pfcore serve``): a worker that exits is marked dead so its live gauges
stop counting (its counters stay in the sum), and the folder that ``pfcore
serve`` made for this run is removed when gunicorn stops.

gunicorn's master loads this module; the app itself is loaded in each worker
(no preload), after the master has forked it.
"""

from __future__ import annotations

import gc
import os
import shutil

# Workers: gthread with one request thread each. A request runs one at a time
# per worker, as with sync workers, but the worker's main thread keeps telling
# the master it is alive: `timeout` then ends a hung worker, not a long answer
# (a sync worker streaming an audit CSV export of a million events was killed
# after 30 s, docs/performance.md P4).
#
# One connection per worker and no keep-alive: a gthread worker accepts new
# connections while its one thread is busy and queues them behind the request
# it is answering, and a keep-alive connection stays with the worker that
# accepted it. Under load a few workers then held every connection while the
# others idled (the benchmark's partials ran on 2 of 5 workers, one core of
# two), and a request could wait behind someone's long export. With these two
# settings a worker takes a connection only when it is free, answers one
# request on it and closes it, so the kernel hands each request to an idle
# worker (docs/performance.md, change 12).
#
# So a worker is held for as long as a client takes to send its request, and
# gunicorn has no deadline for reading one: a few clients sending a byte every
# few seconds hold every worker. Production runs behind nginx with
# config/nginx/, which passes on only whole requests (docs/operations.md, "TLS
# at the reverse proxy"; tests/test_slow_clients.py).
worker_class = "gthread"
threads = 1
worker_connections = 1
keepalive = 0

# Set by `pfcore serve` when it made a temporary folder for the metrics files.
CREATED_DIR_ENV = "PFCORE_METRICS_DIR_CREATED"

# gunicorn 24+ opens a control socket at one path per user (~/.gunicorn/gunicorn.ctl):
# a second `pfcore serve` on the machine would take it over from the first. pfcore
# is run with signals (systemd: SIGTERM to stop, SIGHUP to reload), so none is opened.
# (Older gunicorn versions ignore the unknown setting.)
control_socket_disable = True


# Garbage collection. A worker's heap is mostly objects that live as long as the worker
# (modules, the app, SQLAlchemy's compiled statements, Jinja's templates), and each
# full collection walks all of them: 80-90 ms on the benchmark machine, a pause for
# whichever request is running, every few hundred requests (docs/performance.md,
# change 19). Once the app is loaded, and again once the first requests have built
# those caches, the worker collects once and freezes what is left (gc.freeze): later
# collections walk only what was made since. Garbage is collected before each freeze,
# so nothing unreachable is kept.
FREEZE_AFTER_REQUESTS = (20, 500)


def freeze_heap() -> None:
    gc.collect()
    gc.freeze()


def post_worker_init(worker):
    freeze_heap()


def post_request(worker, req, environ, resp):
    worker.pfcore_requests = getattr(worker, "pfcore_requests", 0) + 1
    if worker.pfcore_requests in FREEZE_AFTER_REQUESTS:
        freeze_heap()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    created = os.environ.get(CREATED_DIR_ENV)
    if created and created == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(created, ignore_errors=True)
