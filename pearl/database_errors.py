"""What the drivers raise when PostgreSQL cannot be reached or the connection broke: the
database restarted or went away. Nothing was done; the same request can be tried again."""

from __future__ import annotations

import psycopg2
from eventsourcing import persistence
from sqlalchemy import exc as sql_errors

DATABASE_AWAY: tuple[type[Exception], ...] = (
    sql_errors.OperationalError,
    sql_errors.InterfaceError,
    persistence.OperationalError,
    persistence.InterfaceError,
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
)
