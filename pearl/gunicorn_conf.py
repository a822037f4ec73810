"""gunicorn settings of the API (`gunicorn --config python:pearl.gunicorn_conf`).

gunicorn's own log lines go through `pearl.logs` (JSON by default, role `api`); its access log
is off: the app writes one line per request itself (api/request_log.py), with the route and
request id gunicorn does not know. With `PROMETHEUS_MULTIPROC_DIR` set, a worker that exits is
marked dead for the metrics.

Workers are threaded (`gthread`, `API_THREADS` threads each, 4 by default): a thread waiting
on PostgreSQL's commit leaves the process free for the next request, and clients keep their
connections alive between requests (a sync worker closes every connection).

Requests gunicorn refuses before they reach the app (a request line or headers over its
limits, a line it cannot parse) are answered as RFC 9457 problem documents, like every other
refusal of the API (`pearl.gunicorn_problems`).

Once a worker has built the app, what it holds is frozen out of the garbage collector's
full collections (`pearl.collector.freeze_startup`): they scan only what came later.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from gunicorn import glogging
from prometheus_client import multiprocess

from pearl import collector, gunicorn_problems
from pearl.logs import configure_logging, log_level


class PearlLogger(glogging.Logger):
    """gunicorn's error log propagated to the `pearl.logs` root handler; no access log."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        configure_logging("api")
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True
        self.error_log.setLevel(log_level())
        self.access_log.setLevel(logging.WARNING)

    def _compute_access_log_enabled(self) -> bool:
        return False


gunicorn_problems.install()

logger_class = PearlLogger
worker_class = "gthread"
threads = int(os.environ.get("API_THREADS", "4"))


def post_worker_init(worker: Any) -> None:
    """The app is built: keep what the worker holds from now on out of full collections."""
    collector.freeze_startup()


def child_exit(server: Any, worker: Any) -> None:
    """Drop the live gauges of a worker that exited (counters and histograms stay)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
