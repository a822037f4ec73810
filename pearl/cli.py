"""The `pearl` command: `up` starts the stack, `migrate` migrates the database,
`projections status|rebuild` inspects or rebuilds the read model."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from pearl import config, launcher, projection_commands
from pearl.devservers import start_postgres
from pearl.migrate import upgrade
from pearl.processes import check_port_free


def migrate() -> int:
    """Migrate DATABASE_URL to head, or the embedded server when DATABASE_URL is unset."""
    database_url = os.environ.get("DATABASE_URL")
    if database_url:
        upgrade(database_url)
        print("pearl: database migrated to head", flush=True)
        return 0
    settings = launcher.Settings.from_env()
    hint = "is `pearl up` running? stop it, or set PG_PORT or DATABASE_URL"
    check_port_free(settings.pg_port, what="embedded PostgreSQL", hint=hint)
    with start_postgres(config.data_dir(), settings.pg_port) as postgres:
        upgrade(postgres.url)
    print("pearl: embedded database migrated to head", flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pearl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "up",
        help="start the stack (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set)",
        description=launcher.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands.add_parser("migrate", help="migrate the database to the latest revision")
    projections = commands.add_parser("projections", help="inspect or rebuild the read model")
    actions = projections.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("status", help="position and lag of each projection")
    actions.add_parser("rebuild", help="rebuild the read tables from position 0, with progress")
    return parser


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pearl` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            return launcher.run()
        if args.command == "projections":
            return (
                projection_commands.status()
                if args.action == "status"
                else projection_commands.rebuild()
            )
        return migrate()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("PEARL_DEBUG"):
            traceback.print_exc()
        print(f"pearl: error: {_one_line(exc)}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
