"""Wakes the event log's listeners after appends: one NOTIFY, sent after commit, for many."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Notifier:
    """Wakes the log's listeners after appends: one NOTIFY, sent after commit, for many.

    Writers do not NOTIFY in their own transactions: PostgreSQL serialises the commits of
    notifying transactions (a database-wide lock held through the WAL flush), which would
    undo parallel appends. A thread sends the NOTIFY instead: at once after a quiet spell,
    and under load at most one per `interval` seconds (each NOTIFY is a commit of its own,
    with its own WAL flush). It exits after `idle_exit` seconds without appends.
    """

    def __init__(
        self, send: Callable[[], None], interval: float = 0.01, idle_exit: float = 5.0
    ) -> None:
        self._send = send
        self._interval = interval
        self._idle_exit = idle_exit
        self._pending = threading.Event()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """Ask for a NOTIFY soon (after every append that committed)."""
        self._pending.set()
        with self._guard:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="pearl-notify", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            if not self._pending.wait(self._idle_exit):
                with self._guard:
                    if not self._pending.is_set():  # a poke now starts a new thread
                        self._thread = None
                        return
            self._pending.clear()
            try:
                self._send()
            except Exception:  # listeners still poll; the next append notifies again
                log.warning("could not NOTIFY the event log's listeners", exc_info=True)
            time.sleep(self._interval)  # appends meanwhile share the next NOTIFY
