"""Credentials: argon2 hashes in an ordinary table, never in the event log."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from api.tables import users
from commands.errors import Conflict

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def register(engine: Engine, email: str, password: str, display_name: str) -> dict[str, Any]:
    user = {"id": uuid4(), "email": email.strip().lower(), "display_name": display_name}
    try:
        with engine.begin() as conn:
            conn.execute(users.insert().values(**user, password_hash=_hasher.hash(password)))
    except IntegrityError:
        raise Conflict(f"a user with email {user['email']} is already registered") from None
    return public(user)


def authenticate(engine: Engine, email: str, password: str) -> dict[str, Any] | None:
    """The user if the password matches; the same work is done for unknown emails."""
    with engine.connect() as conn:
        row = (
            conn.execute(select(users).where(users.c.email == email.strip().lower()))
            .mappings()
            .first()
        )
    try:
        _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password)
    except (VerifyMismatchError, InvalidHashError):
        return None
    return public(dict(row)) if row else None


def find(engine: Engine, user_id: str) -> dict[str, Any] | None:
    try:
        key = UUID(user_id)
    except ValueError:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == key)).mappings().first()
    return public(dict(row)) if row else None


def public(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(user["id"]), "email": user["email"], "display_name": user["display_name"]}
