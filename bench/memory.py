"""`memory`: peak RSS of the API's gunicorn workers after commands and reads on a big world.

Peak is the kernel's high-water mark (`VmHWM` in /proc/PID/status, Linux), so it covers the
whole life of each worker, not just the moment of reading; elsewhere it falls back to the
current RSS. The baseline is the same figure for the idle workers right after start.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psutil

from bench.archives import Archive, element_fields
from bench.reads import Reader, branch
from bench.report import Figure, progress

MB = 1024 * 1024


def worker_peaks(api_pid: int) -> dict[int, int]:
    """Peak resident bytes of each gunicorn worker (children of the master `api_pid`)."""
    peaks: dict[int, int] = {}
    for child in psutil.Process(api_pid).children(recursive=True):
        status = Path(f"/proc/{child.pid}/status")
        peak = None
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
        peaks[child.pid] = peak if peak is not None else child.memory_info().rss
    return peaks


def run(reader: Reader, archive: Archive, commands: int, idle: dict[int, int]) -> list[Figure]:
    progress(f"memory: {commands} commands and reads on a {archive.shape.elements:,}-entity world")
    base = branch(archive)
    failures: list[str] = []

    def writer(offset: int) -> None:
        url = f"{reader.stack.api}{base}/elements"
        for i in range(commands // 2):
            body = element_fields(10_000_000 + offset + i)
            response = reader.session.post(url, json=body, timeout=120)
            if response.status_code != 201:
                failures.append(f"{response.status_code} {response.text[:200]}")
                return

    threads = [threading.Thread(target=writer, args=(k * 1_000_000,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"memory: a command failed: {failures[0]}")
    for _ in range(20):
        reader.get(f"{base}/elements", {"limit": 200, "tag": "amber"})
        reader.get(f"{base}/search", {"q": "amber", "limit": 200})
        reader.get(f"{base}/history", {"limit": 200})
    peaks = worker_peaks(reader.stack.api_process.pid)
    peak = max(peaks.values())
    idle_peak = max(idle.values()) if idle else None
    return [
        Figure(
            "memory",
            f"peak RSS of an API worker ({len(peaks)} workers)",
            peak / MB,
            "MB; ratio = peak / idle worker",
            "idle worker after start, MB",
            None if idle_peak is None else idle_peak / MB,
            None if not idle_peak else peak / idle_peak,
            "< 300 MB",
            peak < 300 * MB,
        )
    ]
