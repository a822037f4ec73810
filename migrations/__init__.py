"""Alembic migrations: they own every table, the event store's included."""
