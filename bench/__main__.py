"""`python -m bench [--quick] [--only SCENARIO ...] [--out PATH]`: run, print, write JSON."""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine

from bench import append, bulk, fork, http_load, infra, memory, reads
from bench.archives import Archive, Shape, write_world
from bench.report import Figure, progress, ratio, table, write

SCENARIOS = (
    "append",
    "http-commands",
    "import",
    "projection-catch-up",
    "as-of",
    "queries",
    "fork",
    "memory",
)
DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"


@dataclass(frozen=True)
class Scale:
    big: Shape  # import, projection catch-up, as-of (the big end), queries
    small: Shape  # as-of (the small end)
    medium: Shape  # fork and memory: one element per entity
    seconds: float  # each throughput run
    samples: int  # each latency figure
    memory_commands: int
    append_modes: tuple[str, ...]


FULL = Scale(
    big=Shape(100_000, 100_000, 1_000_000 - 4 - 200_000),
    small=Shape(1_000, 1_000, 10_000 - 4 - 2_000),
    medium=Shape(100_000, 0, 0),
    seconds=15,
    samples=200,
    memory_commands=200,
    append_modes=("threads", "processes"),
)
QUICK = Scale(
    big=Shape(5_000, 5_000, 20_000 - 4 - 10_000),
    small=Shape(500, 500, 2_000 - 4 - 1_000),
    medium=Shape(5_000, 0, 0),
    seconds=2,
    samples=20,
    memory_commands=40,
    append_modes=("threads",),  # 16 spawned processes cost a minute: full scale only
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every scenario at small scale")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, metavar="SCENARIO")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON results")
    args = parser.parse_args(argv)
    # SIGTERM cleans up as Ctrl-C does: the servers stop and the work directory goes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scale = QUICK if args.quick else FULL
    selected = set(args.only or SCENARIOS)
    began = time.monotonic()
    figures = run(scale, selected, args.out)
    write(figures, args.out)
    print(table(figures))
    print(f"{time.monotonic() - began:.0f} s in all ({'quick' if args.quick else 'full'} scale)")
    print(f"results: {args.out}")
    return 0


def run(scale: Scale, selected: set[str], out: Path) -> list[Figure]:
    figures = Figures(out)
    with infra.servers() as servers:
        progress(f"PostgreSQL and Redis up; work directory {servers.work}")
        if "append" in selected:
            database_url = servers.database("append")
            figures += guarded(
                "append", lambda: append.run(database_url, scale.seconds, scale.append_modes)
            )
        if selected - {"append"}:
            _read_side(servers, scale, selected, figures)
    return figures


def _read_side(servers: infra.Servers, scale: Scale, selected: set[str], figures: Figures) -> None:
    database_url = servers.database("read")
    engine = create_engine(database_url)
    owner_id, email = infra.register_user(engine)
    engine.dispose()
    wanted = {
        "big": bool(selected & {"import", "projection-catch-up", "as-of", "queries"}),
        "small": "as-of" in selected,
        "medium": bool(selected & {"fork", "memory"}),
    }
    archives: dict[str, Archive] = {}
    copy_rate: float | None = None
    for name in ("small", "medium", "big"):  # the big one last: its import is the timed one
        if not wanted[name]:
            continue
        shape: Shape = getattr(scale, name)
        progress(f"writing the {name} world's archive ({shape.events:,} events)")
        archive = write_world(servers.work / f"{name}.ndjson", shape, f"Bench {name}")
        progress(f"importing the {name} world ({archive.path.stat().st_size / 1e6:,.0f} MB)")
        imported = bulk.import_file(database_url, archive, owner_id)
        archive.path.unlink()
        archives[name] = archive
        if name == "big":
            progress("COPY baseline of the same rows")
            copy_rate = bulk.copy_baseline(database_url, imported)
            if "import" in selected:
                figures += [_throughput("import", imported, copy_rate, 0.5)]
    if selected <= {"append", "import"}:
        return
    progress("projecting the backlog (ProjectionRunner.catch_up)")
    projected = bulk.catch_up(database_url)
    if "projection-catch-up" in selected:
        figures += [_throughput("projection-catch-up", projected, copy_rate, 0.25)]
    if not selected & {"http-commands", "as-of", "queries", "fork", "memory"}:
        return
    progress("starting the API, projector and worker")
    with infra.stack(servers, database_url) as stack:
        idle = memory.worker_peaks(stack.api_process.pid)
        reader = reads.Reader(stack, stack.login(email))
        with contextlib.closing(reader):
            if "as-of" in selected:
                figures += guarded(
                    "as-of",
                    lambda: reads.as_of(reader, archives["small"], archives["big"], scale.samples),
                )
            if "queries" in selected:
                figures += guarded(
                    "queries", lambda: reads.queries(reader, archives["big"], scale.samples)
                )
            if "fork" in selected:
                figures += guarded(
                    "fork", lambda: fork.run(reader, archives["medium"], scale.samples)
                )
            if "http-commands" in selected:
                figures += guarded("http-commands", lambda: http_load.run(stack, scale.seconds))
            if "memory" in selected:
                figures += guarded(
                    "memory",
                    lambda: memory.run(reader, archives["medium"], scale.memory_commands, idle),
                )


class Figures(list[Figure]):
    """The figures so far: each batch is logged and written out at once, so that a run cut
    short (or a later scenario that hangs) still leaves what it measured."""

    def __init__(self, out: Path) -> None:
        super().__init__()
        self.out = out

    def __iadd__(self, more: Iterable[Figure]) -> Figures:  # type: ignore[override,misc]
        for figure in more:
            self.append(figure)
            met = "-" if figure.met is None else ("met" if figure.met else "MISSED")
            progress(
                f"{figure.scenario}: {figure.metric} = {figure.value:.4g} {figure.unit}"
                f" (ratio {figure.ratio}; {figure.target}: {met})"
            )
        write(self, self.out)
        return self


def guarded(scenario: str, measure: Callable[[], list[Figure]]) -> list[Figure]:
    """The scenario's figures; a scenario that fails is reported as one failed figure."""
    try:
        return measure()
    except Exception as error:
        progress(f"{scenario} FAILED: {error!r}")
        traceback.print_exc()
        detail = " ".join(repr(error).split())[:120]
        return [Figure(scenario, f"FAILED: {detail}", math.nan, "-", "-", None, None, "-", False)]


def _throughput(scenario: str, timed: bulk.Timed, copy_rate: float | None, target: float) -> Figure:
    r = ratio(timed.rate, copy_rate)
    return Figure(
        scenario,
        f"events/s over {timed.events:,} events ({timed.seconds:.1f} s)",
        timed.rate,
        "events/s",
        "COPY rows/s, same rows",
        copy_rate,
        r,
        f"ratio >= {target}",
        r is not None and r >= target,
    )


if __name__ == "__main__":
    sys.exit(main())
