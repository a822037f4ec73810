"""The `pearl` console script's users, worlds, audit and demo commands, on a real PostgreSQL."""

from __future__ import annotations

import io
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from urllib.parse import urlparse
from uuid import UUID

import pytest
from sqlalchemy import create_engine, text

from commands.application import WorldHistory
from pearl import demo
from pearl.cli import main
from pearl.migrate import upgrade
from pearl.processes import free_port

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def cli_database(database_factory: Callable[[str], str]) -> str:
    """A database of this module's own (the demo accounts have fixed emails)."""
    url = database_factory("pearl_cli")
    upgrade(url)
    return url


@pytest.fixture
def run(
    cli_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Run:
    monkeypatch.setenv("DATABASE_URL", cli_database)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("REDIS_PORT", str(free_port()))  # not a running `pearl up`'s Redis
    monkeypatch.delenv("PEARL_PASSWORD", raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)

    def invoke(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


DEMO_PASSWORD = secrets.token_urlsafe(12)


@pytest.fixture(scope="module")
def demo_world(cli_database: str) -> dict[str, str]:
    """`pearl demo` run once for the module: the ids its report printed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", cli_database)
        patch.setenv("PEARL_DEMO_PASSWORD", DEMO_PASSWORD)
        patch.delenv("REDIS_URL", raising=False)
        patch.setenv("REDIS_PORT", str(free_port()))
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["demo"])
    assert code == 0, err.getvalue()
    report = out.getvalue()
    ids = {label: id_after(label, report) for label in ("world", "proposal", "owner", "editor")}
    ids["report"], ids["progress"] = report, err.getvalue()
    return ids


def id_after(label: str, report: str) -> str:
    """The first id on the report's line `label: ...`."""
    match = re.search(rf"^{label}:.*?([0-9a-f]{{8}}-[0-9a-f-]{{27}})", report, re.M)
    assert match, report
    return match.group(1)


@pytest.fixture(scope="module")
def history(cli_database: str) -> Iterator[WorldHistory]:
    app = WorldHistory.on_database(cli_database)
    yield app
    app.close()


class TestUsersCreate:
    def test_prints_the_new_users_id(self, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PEARL_PASSWORD", "correct horse battery")
        code, out, err = run(
            "users", "create", "--email", "ada@example.com", "--display-name", "Ada"
        )
        assert code == 0, err
        UUID(out.strip())

    def test_a_second_account_with_the_same_email_is_one_line_and_exit_1(
        self, run: Run, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PEARL_PASSWORD", "correct horse battery")
        argv = ("users", "create", "--email", "bob@example.com", "--display-name", "Bob")
        assert run(*argv)[0] == 0
        code, out, err = run(*argv[:3], "BOB@example.com", *argv[4:])
        assert code == 1
        assert out == ""
        assert err.count("\n") == 1
        assert err.startswith("pearl: error: ") and "already registered" in err

    def test_without_pearl_password_and_no_terminal_it_refuses(self, run: Run) -> None:
        code, out, err = run("users", "create", "--email", "c@example.com", "--display-name", "C")
        assert code == 1 and out == ""
        assert err.startswith("pearl: error: ") and "PEARL_PASSWORD" in err

    def test_a_short_password_is_refused(self, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PEARL_PASSWORD", "short")
        code, _, err = run("users", "create", "--email", "d@example.com", "--display-name", "D")
        assert code == 1 and "10-1024 characters" in err


class TestDemo:
    def test_reports_the_world_the_accounts_and_what_to_try(
        self, demo_world: dict[str, str]
    ) -> None:
        report = demo_world["report"]
        assert demo.OWNER_EMAIL in report and demo.EDITOR_EMAIL in report
        assert DEMO_PASSWORD in report  # set by the fixture; otherwise random per run
        assert "REDIS_URL is not set" in report
        assert "curl" in report
        assert demo_world["progress"].count("pearl: demo: ") >= 5

    def test_loads_a_world_with_two_branches_and_its_content(
        self, demo_world: dict[str, str], history: WorldHistory
    ) -> None:
        world = history.world(UUID(demo_world["world"]))
        assert set(world.branches) == {"main", demo.FORK}
        main_branch = history.branch(world, "main")
        counts = {name: len(items) for name, items in main_branch.entities.items()}
        assert counts == {
            "locations": 31,
            "elements": len(demo.ELEMENTS),
            "timelines": 2,
            "timeline_events": len(demo.EVENTS),
        }
        fork = history.branch(world, demo.FORK)
        assert len(fork.entities["timeline_events"]) == len(demo.EVENTS) + 1
        names = {e["name"]: e for e in main_branch.entities["elements"].values()}
        assert names["Queen Aldra"]["metadata"]["faction"] == "red"
        assert "died" in names["Lord Garrick"]["metadata"]
        forked = {e["name"]: e for e in fork.entities["elements"].values()}
        assert "died" not in forked["Lord Garrick"]["metadata"]

    def test_the_editor_is_a_member_and_both_users_recorded_events(
        self, demo_world: dict[str, str], history: WorldHistory, cli_database: str
    ) -> None:
        world = history.world(UUID(demo_world["world"]))
        assert world.members[demo_world["editor"]] == "editor"
        engine = create_engine(cli_database)
        with engine.connect() as conn:
            for user in ("owner", "editor"):
                recorded = conn.execute(
                    text("SELECT count(*) FROM pearl_events WHERE position(:actor in state) > 0"),
                    {"actor": f'"actor":"{demo_world[user]}"'.encode()},
                ).scalar_one()
                assert recorded > 5, user
        engine.dispose()

    def test_the_proposal_is_recorded_and_pending(
        self, demo_world: dict[str, str], history: WorldHistory
    ) -> None:
        proposal = history.proposal(UUID(demo_world["proposal"]))
        assert proposal.status == "pending"
        assert proposal.kind == "link-mentions"
        assert proposal.world_id == demo_world["world"]

    def test_a_second_run_reuses_the_accounts(self, demo_world: dict[str, str], run: Run) -> None:
        code, out, _ = run("demo")
        assert code == 0
        assert f"id {demo_world['owner']}" in out and "existing" in out
        assert demo_world["world"] not in out

    def test_queues_its_proposal_on_a_running_embedded_redis(
        self, run: Run, monkeypatch: pytest.MonkeyPatch, redis_url: str
    ) -> None:
        monkeypatch.setenv("REDIS_PORT", str(urlparse(redis_url).port))  # "pearl up" is running
        monkeypatch.setenv("PEARL_DEMO_PASSWORD", DEMO_PASSWORD)
        code, out, _ = run("demo")
        assert code == 0
        assert "queued for the workers" in out


class TestWorldsExportImport:
    def test_a_copy_round_trip_gives_a_world_whose_export_verifies(
        self, demo_world: dict[str, str], run: Run, tmp_path: Path, history: WorldHistory
    ) -> None:
        archive = tmp_path / "demo.ndjson"
        code, out, err = run("worlds", "export", demo_world["world"], "-o", str(archive))
        assert code == 0, err
        assert out == ""
        assert archive.read_bytes().count(b"\n") > 70  # a header and every event

        code, out, err = run(
            "worlds", "import", str(archive), "--as-copy", "--owner", demo_world["editor"]
        )
        assert code == 0, err
        copy_id = out.strip()
        assert copy_id != demo_world["world"]
        copy = history.world(UUID(copy_id))
        assert set(copy.branches) == {"main", demo.FORK}
        assert copy.members[demo_world["editor"]] == "owner"

        code, exported, err = run("worlds", "export", copy_id)  # to stdout
        assert code == 0, err
        again = tmp_path / "copy.ndjson"
        again.write_text(exported)
        code, out, err = run(
            "worlds", "import", str(again), "--as-copy", "--owner", demo_world["owner"]
        )
        assert code == 0, err  # the import verifies every line and every chain
        assert run("audit", "verify", copy_id)[0] == 0

    def test_importing_the_same_world_again_is_a_conflict(
        self, demo_world: dict[str, str], run: Run, tmp_path: Path
    ) -> None:
        archive = tmp_path / "demo.ndjson"
        assert run("worlds", "export", demo_world["world"], "-o", str(archive))[0] == 0
        code, out, err = run("worlds", "import", str(archive), "--owner", demo_world["owner"])
        assert code == 1 and out == ""
        assert err.startswith("pearl: error: ") and err.count("\n") == 1

    def test_exporting_an_unknown_world_is_one_line_and_writes_no_file(
        self, run: Run, tmp_path: Path
    ) -> None:
        target = tmp_path / "none.ndjson"
        code, _, err = run(
            "worlds", "export", "00000000-0000-0000-0000-000000000001", "-o", str(target)
        )
        assert code == 1
        assert err == "pearl: error: world 00000000-0000-0000-0000-000000000001 does not exist\n"
        assert not target.exists() and not list(tmp_path.iterdir())

    def test_an_unknown_owner_is_refused(
        self, demo_world: dict[str, str], run: Run, tmp_path: Path
    ) -> None:
        code, _, err = run("worlds", "import", str(tmp_path / "x"), "--owner", "nobody")
        assert code == 1 and "no registered user" in err


class TestAuditVerify:
    def test_the_demo_world_verifies_then_a_tampered_row_does_not(
        self, run: Run, cli_database: str, history: WorldHistory
    ) -> None:
        code, out, err = run("demo")  # a world of this test's own, to tamper with
        assert code == 0, err
        world_id = id_after("world", out)

        code, out, err = run("audit", "verify", world_id)
        assert code == 0, err
        rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
        assert set(rows) == {"(world)", "main", demo.FORK}
        assert all(row[0] == "true" and row[2] == "-" for row in rows.values())

        main_stream = history.world(UUID(world_id)).branches["main"]["branch_id"]
        engine = create_engine(cli_database)
        with engine.begin() as conn:
            changed = conn.execute(
                text(
                    "UPDATE pearl_events SET state = convert_to(replace("
                    "convert_from(state, 'UTF8'), 'Vareth', 'Varath'), 'UTF8') "
                    "WHERE originator_id = :stream AND originator_version = 3"
                ),
                {"stream": UUID(str(main_stream))},
            ).rowcount
        engine.dispose()
        assert changed == 1

        code, out, err = run("audit", "verify", world_id)
        assert code == 1
        rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
        # stream version 3 is branch version 2 (a root branch counts from its start, 0)
        assert rows["main"][0] == "false" and rows["main"][2] == "2"
        assert rows[demo.FORK][0] == "false"  # it inherits main's chain
        assert rows["(world)"][0] == "true"

        code, out, _ = run("audit", "verify", world_id, "--branch", "main")
        assert code == 1 and len(out.splitlines()) == 2

    def test_an_unknown_branch_is_one_line(self, demo_world: dict[str, str], run: Run) -> None:
        code, _, err = run("audit", "verify", demo_world["world"], "--branch", "nope")
        assert code == 1 and err.startswith("pearl: error: ") and "nope" in err
