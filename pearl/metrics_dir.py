"""The directory where the API's and the worker's processes keep their Prometheus samples.

prometheus_client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`): every process writes its
own files there and `/metrics` adds them up. The launcher empties it once per start, before
any process writes, since samples of an earlier run must not count in this one.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

METRICS_DIR = "metrics"  # under the data dir


def metrics_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with PROMETHEUS_MULTIPROC_DIR set, and that directory made.

    A directory `env` already names is kept; otherwise, when `env` names PEARL_DATA_DIR (the
    launcher's stack and the e2e server do), it is `<data dir>/metrics`. With neither, `env`
    is returned as it is and the child keeps its metrics to itself.
    """
    child_env = dict(env)
    named = child_env.get("PROMETHEUS_MULTIPROC_DIR")
    data_dir = child_env.get("PEARL_DATA_DIR")
    if not named and not data_dir:
        return child_env
    directory = Path(named) if named else Path(str(data_dir)) / METRICS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    child_env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return child_env


def reset_metrics_dir(data_dir: Path) -> Path:
    """`<data_dir>/metrics`, emptied."""
    directory = data_dir / METRICS_DIR
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory
