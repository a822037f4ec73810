"""Schemathesis against a live server: generated (and deliberately invalid) requests for every
operation in `/openapi.json`, as the owner of a prepared world.

A case fails when the server answers 5xx or a response breaks the schema the spec documents
for it. `fuzz()` runs against any server; `run()` starts one as the e2e fixture does (embedded
PostgreSQL and Redis, projector, suggestion worker, gunicorn) and fuzzes it at length. The
spec has no OpenAPI links, so there is no stateful phase: path parameters are drawn from the
ids of real resources instead, so that most cases reach past the 404.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import hypothesis.strategies as st
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import response_schema_conformance

from pearl.devservers import create_database, start_postgres, start_redis
from pearl.launcher import start_api_server, start_projector, start_worker
from pearl.migrate import upgrade
from pearl.processes import free_port

TIMEOUT = 15
PASSWORD = "correct horse battery staple"
CHECKS = [not_a_server_error, response_schema_conformance]
COLLECTIONS = ("locations", "elements", "timelines", "timeline-events")


# `POST /worlds/import` takes an NDJSON archive: JSON lines, or any bytes at all.
NDJSON = st.one_of(
    st.lists(
        st.dictionaries(st.text(max_size=12), st.one_of(st.integers(), st.text(max_size=30))),
        max_size=5,
    ).map(lambda lines: "\n".join(json.dumps(line) for line in lines).encode()),
    st.binary(max_size=400),
)
schemathesis.openapi.media_type("application/x-ndjson", NDJSON)


@dataclass
class Stage:
    """A world owned by the fuzzing user, with ids of real resources to aim at."""

    token: str
    pools: dict[str, list[str]]


@dataclass
class Report:
    cases: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    examples: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    reached: set[str] = field(default_factory=set)  # operations with at least one 2xx
    # 401/403 to a valid case outside /auth/ (invalid ones may drop the token on purpose)
    refused: set[str] = field(default_factory=set)

    def counts(self) -> dict[str, int]:
        return {
            "cases": self.cases,
            "server_errors": self.server_errors,
            "schema_violations": self.schema_violations,
            "succeeded": sum(n for status, n in self.statuses.items() if status < 300),
            "operations_reached": len(self.reached),
        }


def _post(api: str, path: str, body: Any, token: str = "", status: int = 201) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.post(api + path, json=body, headers=headers, timeout=TIMEOUT)
    assert response.status_code == status, (path, response.status_code, response.text)
    return response.json()


def account(api: str) -> tuple[str, str]:
    """A new user: (id, access token)."""
    email = f"fuzz-{uuid4().hex[:12]}@example.com"
    user = _post(api, "/auth/register", {"email": email, "password": PASSWORD, "display_name": "F"})
    tokens = _post(api, "/auth/token", {"email": email, "password": PASSWORD}, status=200)
    return str(user["id"]), str(tokens["access_token"])


def prepare(api: str, copies: int = 3) -> Stage:
    """A world with members, `copies` entities of each collection, a fork and a proposal."""
    _, token = account(api)
    world = _post(api, "/worlds", {"name": "Fuzzed world"}, token)
    w, b = f"/worlds/{world['id']}", f"/worlds/{world['id']}/branches/main"
    members = []
    for role in ("editor", "viewer"):
        user_id, _ = account(api)
        requests.put(
            f"{api}{w}/members/{user_id}",
            json={"role": role},
            timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()
        members.append(user_id)
    pools: dict[str, list[str]] = {c: [] for c in COLLECTIONS}
    for n in range(copies):
        pools["locations"].append(
            _post(api, f"{b}/locations", {"name": f"L{n}", "kind": "x"}, token)["id"]
        )
        pools["elements"].append(
            _post(api, f"{b}/elements", {"name": f"E{n}", "kind": "x"}, token)["id"]
        )
        timeline = _post(api, f"{b}/timelines", {"name": f"T{n}"}, token)["id"]
        pools["timelines"].append(timeline)
        event = {"timeline_id": timeline, "title": f"V{n}", "start": {"year": n + 1}}
        pools["timeline-events"].append(_post(api, f"{b}/timeline-events", event, token)["id"])
    _post(api, f"{w}/branches", {"name": "side", "from": "main"}, token)
    proposal = _post(api, f"{b}/suggestions", {"kind": "consistency"}, token, status=202)
    pools.update(
        world_id=[str(world["id"])],
        branch=["main", "side"],
        user_id=members,
        proposal_id=[str(proposal["id"])],
        collection=list(COLLECTIONS),
    )
    return Stage(token=token, pools=pools)


def aim(case: Case, stage: Stage, data: st.DataObject) -> None:
    """Point most cases' path parameters at real resources (some keep generated ones)."""
    params = case.path_parameters or {}
    path = case.operation.path
    for name in list(params):
        pool = stage.pools.get(name)
        if name == "entity_id":
            collection = next((c for c in COLLECTIONS if f"/{c}/" in path), "")
            pool = stage.pools.get(collection or str(params.get("collection", "")), None)
        if name == "timeline_id":
            pool = stage.pools["timelines"]
        if pool and data.draw(st.integers(0, 9), label=f"aim {name}") < 8:
            params[name] = data.draw(st.sampled_from(pool), label=name)
    # A position the log has not reached waits MIN_POSITION_WAIT and answers 503 by design.
    query = case.query or {}
    if isinstance(query.get("min_position"), int) and query["min_position"] > 0:
        query["min_position"] = data.draw(st.integers(0, 3), label="min_position")


def fuzz(base_url: str, stage: Stage, *, examples: int) -> Report:
    """Run `examples` cases (valid and invalid ones) per operation; count what broke."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=schemathesis.Config())
    report = Report()
    session = requests.Session()
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # a spec the generator cannot read counts as broken
            report.schema_violations += 1
            report.examples.append(f"unreadable operation: {result.err()}")
            continue
        strategy = st.one_of(
            result.ok().as_strategy(GenerationMode.POSITIVE),
            result.ok().as_strategy(GenerationMode.NEGATIVE),
        )
        cases(strategy, examples)(lambda case: _try(case, base_url, session, stage, report), stage)
    return report


def cases(strategy: st.SearchStrategy[Case], examples: int) -> Any:
    """A function `(check, stage)` that runs `check` on `examples` cases, reproducibly."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(data=st.data())
    def each(check: Any, stage: Stage, data: st.DataObject) -> None:
        case = data.draw(strategy, label="case")
        aim(case, stage, data)
        check(case)

    return each


def _try(
    case: Case, base_url: str, session: requests.Session, stage: Stage, report: Report
) -> None:
    report.cases += 1
    auth = {"Authorization": f"Bearer {stage.token}"}
    response = case.call(base_url=base_url, session=session, headers=auth, timeout=TIMEOUT)
    report.statuses[response.status_code] += 1
    operation = f"{case.method} {case.operation.path}"
    if response.status_code < 300:
        report.reached.add(operation)
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if response.status_code in (401, 403) and "/auth/" not in operation and not negative:
        report.refused.add(f"{operation} -> {response.status_code}")
    try:
        case.validate_response(response, checks=CHECKS)
    except (AssertionError, BaseExceptionGroup) as failure:  # Failure, FailureGroup
        if response.status_code >= 500:
            report.server_errors += 1
        else:
            report.schema_violations += 1
        if len(report.examples) < 20:
            where = f"{case.method} {case.formatted_path} -> {response.status_code}"
            report.examples.append(f"{where}: {str(failure)[:1500]}")


@contextmanager
def stack(base: Path) -> Iterator[str]:
    """PostgreSQL, Redis, projector, worker and API, as the e2e fixture starts them."""
    env = {
        "JWT_SECRET": secrets.token_urlsafe(48),
        "PEARL_DATA_DIR": str(base),
        "ACCESS_TOKEN_TTL": str(24 * 3600),
        "LOGIN_MAX_ATTEMPTS": "1000000",
    }
    with (
        start_postgres(base / "postgres", free_port(), database=None, durable=False) as pg,
        start_redis(base / "redis", free_port()) as redis,
    ):
        database_url = create_database(pg.url, "pearl_hostile")
        upgrade(database_url)
        with (
            start_projector(database_url, env=env, log_path=base / "projector.log"),
            start_worker(
                database_url,
                redis.url,
                env={**env, "AI_PROVIDER": "offline"},
                log_path=base / "worker.log",
            ),
            start_api_server(
                database_url, free_port(), redis_url=redis.url, env=env, log_path=base / "api.log"
            ) as api,
        ):
            yield api.url


def run(quick: bool = False) -> dict[str, int]:
    """The long schemathesis run (`quick`: a few cases per operation) on a server of its own."""
    examples = 8 if quick else 150
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pearl-hostile-") as base, stack(Path(base)) as url:
        report = fuzz(url, prepare(url + "/api/v1"), examples=examples)
    for example in report.examples:
        print(example)
    counts = report.counts()
    counts["seconds"] = int(time.monotonic() - started)
    return counts


if __name__ == "__main__":
    print(run(quick=True))
