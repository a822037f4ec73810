"""`python -m tests.soak [--quick] [--only NAME ...] [--json PATH]` (`make soak`).

Runs the long versions of the crash, concurrency and fault scenarios (the e2e tests run the
same code with small numbers), plus `hostile` from tests/soak/hostile.py when it exists, on
throw-away PostgreSQL and Redis servers. Prints a table of what each scenario did and what it
found; every "found" count must be zero, else the exit code is 1. The JSON summary goes to
`--json PATH`, or else to the end of stdout.

Found counts: `lost` (acknowledged but not recorded), `duplicated` (recorded more than once),
`leaked` (processes alive after a stack stopped, or internals such as stack traces or driver
names in an error body), `broken` (anything else: an unexpected status, a chain that does not
verify, read tables that differ from a rebuild, a scenario that could not finish).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.resilience.report import FOUND, Result
from tests.resilience.stack import Infra, Stack, embedded_infra, on_redis_db
from tests.soak.concurrency import concurrency
from tests.soak.crash import Load, crash_api, crash_projector
from tests.soak.faults import faults
from tests.soak.worker_crash import crash_worker

Scenario = Callable[[Infra, bool], Result]


def run_crash_api(infra: Infra, quick: bool) -> Result:
    if quick:
        return crash_api(infra, Load(writers=4, commands=20, worlds=2), kills=6)
    return crash_api(infra, Load(writers=8, commands=120, worlds=3, api_workers=4), kills=40)


def run_crash_projector(infra: Infra, quick: bool) -> Result:
    if quick:
        return crash_projector(infra, Load(writers=4, commands=20, worlds=2), kills=4)
    return crash_projector(infra, Load(writers=8, commands=120, worlds=3, api_workers=4), kills=20)


def run_crash_worker(infra: Infra, quick: bool) -> Result:
    return crash_worker(infra, rounds=2 if quick else 8)


def run_concurrency(infra: Infra, quick: bool) -> Result:
    database_url = infra.migrated_database("pearl_concurrency")
    stack = Stack(database_url, on_redis_db(infra.redis_url, 7), infra.logs / "concurrency")
    stack.api_workers = 2 if quick else 4
    try:
        stack.start_projector()
        stack.start_api()
        if quick:
            return concurrency(stack.api_url, clients=6, rounds=4)
        return concurrency(stack.api_url, clients=12, rounds=25)
    finally:
        stack.stop()


def run_faults(infra: Infra, quick: bool) -> Result:
    return faults(infra.logs / "faults", cycles=1 if quick else 4)


# Counts of the hostile run that are findings (besides FOUND): each is a `broken`.
HOSTILE_FINDINGS = ("server_errors", "schema_violations")


def run_hostile(infra: Infra, quick: bool) -> Result:
    """tests/soak/hostile.py (another scenario set): `run(quick) -> dict[str, int]`."""
    module = importlib.import_module("tests.soak.hostile")
    counts: dict[str, int] = module.run(quick=quick)
    findings = (*FOUND, *HOSTILE_FINDINGS)
    result = Result()
    result.done = {k: int(v) for k, v in counts.items() if k not in findings}
    for key in findings:
        kind = key if key in FOUND else "broken"
        result.problem(kind, f"the hostile run reports {key}={counts.get(key)}", counts.get(key, 0))
    return result


SCENARIOS: dict[str, Scenario] = {
    "crash-api": run_crash_api,
    "crash-projector": run_crash_projector,
    "crash-worker": run_crash_worker,
    "concurrency": run_concurrency,
    "faults": run_faults,
    "hostile": run_hostile,
}


def run_one(name: str, infra: Infra, quick: bool) -> dict[str, Any]:
    """One scenario's summary entry; an exception counts as one `broken`."""
    started = time.monotonic()
    try:
        result = SCENARIOS[name](infra, quick)
        status = "ok" if result.ok else "FAILED"
    except ModuleNotFoundError as error:
        if name != "hostile" or error.name != "tests.soak.hostile":
            raise
        return {"scenario": name, "status": "missing", "seconds": 0, "done": {}, "found": {}}
    except Exception as error:  # a scenario that could not finish is a finding, not a crash
        result = Result()
        result.problem("broken", f"{type(error).__name__}: {error}")
        result.notes.append(traceback.format_exc(limit=5))
        status = "FAILED"
    seconds = round(time.monotonic() - started, 1)
    return {"scenario": name, "status": status, "seconds": seconds, **result.as_dict()}


def table(entries: list[dict[str, Any]]) -> str:
    """A plain-text table: scenario, status, time, what was done, what was found."""

    def pairs(counts: dict[str, int]) -> str:
        return ", ".join(f"{k}={v}" for k, v in counts.items()) or "-"

    rows = [("scenario", "status", "seconds", "done", "found")]
    for e in entries:
        rows.append(
            (e["scenario"], e["status"], str(e["seconds"]), pairs(e["done"]), pairs(e["found"]))
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=False)) + "  " + row[4]
        for row in rows
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small numbers (a minute or two)")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the JSON summary here")
    args = parser.parse_args(argv)
    names = args.only or list(SCENARIOS)
    base = Path(tempfile.mkdtemp(prefix="pearl-soak-"))
    entries: list[dict[str, Any]] = []
    with embedded_infra(base) as infra:
        for name in names:
            print(f"soak: {name} ...", flush=True)
            entries.append(run_one(name, infra, args.quick))
            print(f"soak: {name} {entries[-1]['status']} in {entries[-1]['seconds']} s", flush=True)
    failed = [e for e in entries if e["status"] == "FAILED"]
    missing = [e for e in entries if e["status"] == "missing"]
    print()
    print(table(entries))
    for entry in failed:
        print(f"\n{entry['scenario']}:\n  " + "\n  ".join(entry["notes"]))
    summary = {"quick": args.quick, "ok": not failed, "scenarios": entries}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    else:
        print(json.dumps(summary))
    if failed:
        print(f"\nsoak: logs kept in {base}", file=sys.stderr)
        return 1
    shutil.rmtree(base, ignore_errors=True)
    # A missing scenario fails the run only when it was asked for by name.
    return 1 if missing and args.only else 0


if __name__ == "__main__":
    sys.exit(main())
