"""`pearl users create`: register an account from the command line.

The password comes from the PEARL_PASSWORD environment variable or, when stdin is a terminal,
from a prompt; never from the command line, where other users could read it.
"""

from __future__ import annotations

import getpass
import os
import sys

from sqlalchemy import create_engine

from api import users
from commands.errors import InvalidCommand
from pearl.projection_commands import database

MIN_PASSWORD = 10  # as the API's /auth/register asks
MAX_PASSWORD = 1024


def read_password() -> str:
    """PEARL_PASSWORD, else a prompt (twice) when stdin is a terminal."""
    password = os.environ.get("PEARL_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise InvalidCommand.field(
                "password", "set PEARL_PASSWORD (stdin is not a terminal to prompt on)"
            )
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise InvalidCommand.field("password", "the two passwords differ")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidCommand.field(
            "password", f"must be {MIN_PASSWORD}-{MAX_PASSWORD} characters long"
        )
    return password


def create(email: str, display_name: str) -> int:
    """Register the user and print the new id."""
    if "@" not in email or not email.strip():
        raise InvalidCommand.field("email", f"{email!r} is not an email address")
    if not display_name.strip() or len(display_name) > 200:
        raise InvalidCommand.field("display_name", "must be 1-200 characters")
    password = read_password()
    with database() as url:
        engine = create_engine(url)
        try:
            user = users.register(engine, email, password, display_name)
        finally:
            engine.dispose()
    print(user["id"], flush=True)
    return 0
