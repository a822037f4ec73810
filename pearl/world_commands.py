"""`pearl worlds export|import` and `pearl audit verify`: archives and hash chains, offline.

Export and import run the same code as `GET /worlds/{id}/export` and `POST /worlds/import`;
verification recomputes each branch's chain as `GET .../verify` does.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from uuid import UUID, uuid4

from sqlalchemy import Engine, create_engine

from api import users
from commands.application import WorldHistory
from commands.archive_export import export_archive
from commands.archive_format import read_lines
from commands.archive_import import import_archive
from commands.errors import NotFound
from commands.provenance import Provenance
from commands.verification import Verdict, verify_branch, verify_world
from pearl.projection_commands import database


@contextlib.contextmanager
def _opened() -> Iterator[tuple[Engine, WorldHistory]]:
    with database() as url:
        engine = create_engine(url)
        history = WorldHistory.on_database(url)
        try:
            yield engine, history
        finally:
            history.close()
            engine.dispose()


def export(world_id: UUID, output: str | None) -> int:
    """Stream the world's archive (NDJSON) to `output`, or to stdout when None or `-`."""
    with _opened() as (engine, history):
        lines = export_archive(engine, history.mapper, world_id)
        header = next(lines)  # the world exists: only now is a file created
        if output in (None, "-"):
            _write(sys.stdout.buffer, header, lines)
            sys.stdout.buffer.flush()
            return 0
        assert output is not None
        path = Path(output)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            with partial.open("wb") as file:
                written = _write(file, header, lines)
            partial.replace(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    print(f"pearl: exported world {world_id} ({written} bytes) to {output}", file=sys.stderr)
    return 0


def _write(file: BinaryIO, header: bytes, chunks: Iterator[bytes]) -> int:
    file.write(header)
    total = len(header)
    for chunk in chunks:
        file.write(chunk)
        total += len(chunk)
    return total


def import_(source: str, owner: str, as_copy: bool) -> int:
    """Import an archive file (`-`: stdin) for `owner`, a registered user; print the world id."""
    with _opened() as (engine, history):
        user = users.find(engine, owner)
        if user is None:
            raise NotFound(f"there is no registered user with id {owner}")
        importer = Provenance(actor=user["id"], command_id=str(uuid4()))
        with _source(source) as stream:
            imported = import_archive(
                history, engine, read_lines(stream), importer, as_copy=as_copy
            )
    print(imported.world.id, flush=True)
    copied = f", a copy of {imported.copied_from}" if imported.copied_from else ""
    print(f"pearl: imported {imported.events} events{copied}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _source(source: str) -> Iterator[BinaryIO]:
    if source == "-":
        yield sys.stdin.buffer
        return
    with open(source, "rb") as file:
        yield file


def verify(world_id: UUID, branch: str | None) -> int:
    """Recompute the hash chains (the world stream and each branch, or one branch).

    Prints one row per chain; the exit code is 1 when any chain does not verify.
    """
    with _opened() as (_, history):
        world = history.world(world_id)
        if branch is not None and branch not in world.branches:
            raise NotFound(f"branch {branch!r} does not exist in world {world_id}")
        verdicts: list[tuple[str, Verdict]] = []
        if branch is None:
            verdicts.append(("(world)", verify_world(history, world_id)))
        for name in [branch] if branch is not None else sorted(world.branches):
            verdicts.append((name, verify_branch(history, world, name)))
    width = max(12, *(len(name) for name, _ in verdicts))
    print(f"{'branch':<{width}} {'valid':<6} {'checked':>8}  first_invalid_version")
    for name, verdict in verdicts:
        first = "-" if verdict.first_invalid_version is None else verdict.first_invalid_version
        print(f"{name:<{width}} {str(verdict.valid).lower():<6} {verdict.checked:>8}  {first}")
    return 0 if all(verdict.valid for _, verdict in verdicts) else 1
