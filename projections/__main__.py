"""The projector process: `python -m projections` follows the log until SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading

from sqlalchemy import create_engine

from commands.application import WorldHistory
from pearl.config import Config
from projections.runner import ProjectionRunner


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s projector %(message)s")
    config = Config.from_env()
    engine = create_engine(config.database_url, pool_pre_ping=True, pool_size=2)
    history = WorldHistory.on_database(config.database_url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runner = ProjectionRunner(engine, history)
    logging.info("following the event log from position %d", runner.position())
    runner.follow(stop)
    logging.info("stopped at position %d", runner.position())


if __name__ == "__main__":
    main()
