"""The projector process: `python -m projections` follows the log until SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading

from sqlalchemy import create_engine

from commands.application import WorldHistory
from pearl import collector
from pearl.config import Config
from pearl.logs import configure_logging
from pearl.pool_checks import drop_closed_on_checkout
from projections.runner import ProjectionRunner

log = logging.getLogger("projections")


def main() -> None:
    configure_logging("projector")
    config = Config.from_env()
    engine = create_engine(config.database_url, pool_size=2)
    history = WorldHistory.on_database(config.database_url)
    # a select() per checkout, not the SELECT 1 before every batch that pool_pre_ping costs
    for pooled in (engine, history.recorder.datastore.engine):  # type: ignore[attr-defined]
        drop_closed_on_checkout(pooled)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runner = ProjectionRunner(engine, history)
    collector.freeze_startup()
    log.info("following the event log from position %d", runner.position())
    runner.follow(stop)
    log.info("stopped at position %d", runner.position())


if __name__ == "__main__":
    main()
