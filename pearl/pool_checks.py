"""Pooled connections the server has closed, found as they are checked out.

Used by the pools of the API and of the projector (their own engines and their event
stores').
"""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError


def drop_closed_on_checkout(engine: Engine) -> None:
    """Replace a pooled connection the server has closed as it is checked out, so that after
    a database restart no request fails on a stale connection, without a round trip.

    A server that stops (or restarts) ends its sessions: the socket of an idle pooled
    connection then has the server's goodbye (or end of file) to read, while a live idle
    connection has nothing. Looking costs one `select()` call, where `pool_pre_ping` costs a
    `SELECT 1` (and a BEGIN and ROLLBACK) on every checkout. Only a connection with something
    to read is pinged (anything else a server might send unasked, a notice say, then costs
    one ping, not the connection).
    """

    @event.listens_for(engine, "checkout")
    def check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if dbapi_connection.closed:
            raise DisconnectionError("closed pooled connection")  # the pool reconnects
        try:
            readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
        except (OSError, ValueError) as error:
            raise DisconnectionError("unusable pooled connection") from error
        if readable:
            ping(dbapi_connection)


def ping(dbapi_connection: Any) -> None:
    """`SELECT 1`, leaving no transaction open; DisconnectionError if it fails."""
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if not dbapi_connection.autocommit:
            dbapi_connection.rollback()
    except Exception as error:
        raise DisconnectionError("the server closed this pooled connection") from error
