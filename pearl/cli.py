"""The `pearl` command: `up` starts the stack, `migrate` migrates the database,
`projections status|rebuild` inspects or rebuilds the read model, `users create` registers
an account, `worlds export|import` moves worlds as archives, `audit verify` checks hash
chains and `demo` loads a sample world."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from uuid import UUID

from pearl import config, demo, launcher, projection_commands, user_commands, world_commands
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

    user_parser = commands.add_parser("users", help="manage accounts")
    user_actions = user_parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = user_actions.add_parser(
        "create",
        help="register an account and print its id",
        description="The password is read from PEARL_PASSWORD, or prompted for on a terminal.",
    )
    create.add_argument("--email", required=True)
    create.add_argument("--display-name", required=True)

    worlds = commands.add_parser("worlds", help="export or import whole worlds (NDJSON archives)")
    world_actions = worlds.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = world_actions.add_parser("export", help="write a world's archive")
    export.add_argument("world_id", metavar="WORLD_ID", type=UUID)
    export.add_argument("-o", "--output", metavar="FILE", help="the file (default: stdout)")
    imports = world_actions.add_parser("import", help="import an archive and print the world id")
    imports.add_argument("file", metavar="FILE", help="the archive (- for stdin)")
    imports.add_argument("--as-copy", action="store_true", help="import under new ids")
    imports.add_argument("--owner", required=True, metavar="USER_ID", help="the importing user")

    audit = commands.add_parser("audit", help="check the tamper evidence of a world")
    audit_actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = audit_actions.add_parser(
        "verify", help="recompute the hash chains; exit 1 if any does not verify"
    )
    verify.add_argument("world_id", metavar="WORLD_ID", type=UUID)
    verify.add_argument("--branch", metavar="NAME", help="only this branch")

    commands.add_parser(
        "demo",
        help="load a sample world (demo accounts, branches, a pending proposal)",
        description=demo.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
        if args.command == "users":
            return user_commands.create(args.email, args.display_name)
        if args.command == "worlds":
            if args.action == "export":
                return world_commands.export(args.world_id, args.output)
            return world_commands.import_(args.file, args.owner, args.as_copy)
        if args.command == "audit":
            return world_commands.verify(args.world_id, args.branch)
        if args.command == "demo":
            return demo.run()
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
