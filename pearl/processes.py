"""Child processes the launcher and the tests start, supervise and stop.

Every child runs in the foreground (never daemonized) in a session of its own, so a Ctrl-C in
the terminal reaches only the launcher, which then stops the children in order. On Linux a
child also gets a signal when the thread that started it dies, so nothing outlives a killed
launcher or test run.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import pwd
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

LOCALHOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


class DevServerError(RuntimeError):
    """A process could not be started or stopped; the message is one line meant for a person."""


class PortInUseError(DevServerError):
    """The TCP port a server should listen on is already taken."""

    def __init__(self, host: str, port: int, what: str, hint: str = "") -> None:
        message = f"cannot start {what}: {host}:{port} is already in use"
        if hint:
            message += f" ({hint})"
        super().__init__(message)
        self.host = host
        self.port = port


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port on `host` that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def check_port_free(port: int, host: str = LOCALHOST, *, what: str, hint: str = "") -> None:
    """Raise `PortInUseError` unless a server could bind `host:port` now.

    SO_REUSEADDR mirrors what PostgreSQL, Redis and gunicorn do, so a port in TIME_WAIT from an
    earlier run counts as free.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUseError(host, port, what, hint) from None
            raise DevServerError(f"cannot start {what}: cannot bind {host}:{port}: {exc}") from None


@dataclass
class ManagedProcess:
    """A child process this program started and must stop."""

    name: str
    process: subprocess.Popen[bytes]
    url: str = ""
    log_path: Path | None = None
    stop_signal: int = signal.SIGTERM
    _log_offset: int = 0
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        """None while it runs, else its exit code (negative: killed by that signal)."""
        return self.process.poll()

    def describe_exit(self) -> str:
        """How it ended, for people: "exited with code 3" or "was killed by SIGKILL"."""
        code = self.process.poll()
        if code is None:
            return "is running"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"was killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def log_text(self) -> str:
        """What this process wrote to its log file so far (empty when it logs elsewhere)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(self._log_offset)
            return handle.read().decode("utf-8", "replace")

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of `log_text()`, joined with " | " into one line."""
        tail = self.log_text().splitlines()[-lines:]
        return " | ".join(line.strip() for line in tail if line.strip())

    def failure(self, problem: str) -> DevServerError:
        """An error saying `problem`, with the tail of the log, on one line."""
        tail = self.log_tail()
        where = f"; log {self.log_path}" if self.log_path else ""
        return DevServerError(f"{self.name} {problem}{where}" + (f": {tail}" if tail else ""))

    def stop(self, timeout: float = 10.0) -> int | None:
        """Ask it to stop, wait up to `timeout` seconds, then kill it; return its exit code.

        Whatever is left of its process group afterwards (say, gunicorn workers whose master
        crashed) is killed too.
        """
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # The child leads its own process group; the group id stays reserved while any member
        # lives, so this reaches only the child's leftovers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return self.process.returncode

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def as_user(user: str | None) -> dict[str, Any]:
    """`subprocess` arguments that run a child as `user` with only that user's group."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """A pre-exec hook that makes the child receive `sig` when its parent thread dies."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, sig)

    return hook


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
    url: str = "",
    cwd: Path | None = None,
) -> ManagedProcess:
    """Start `argv` as a supervised child.

    Output goes to `log_path` (appended) when given, else to this process's stdout/stderr.
    `user` runs it as that system user (only root may ask). Call from the main thread: on Linux
    the child is signalled with `stop_signal` when the starting thread exits.
    """
    log_file: IO[bytes] | None = None
    offset = 0
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("ab")
        offset = log_file.tell()
    try:
        process = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT if log_file is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent(stop_signal),
            **as_user(user),
        )
    except OSError as exc:
        if log_file is not None:
            log_file.close()
        raise DevServerError(f"cannot start {name} ({argv[0]}): {exc.strerror or exc}") from None
    return ManagedProcess(
        name=name,
        process=process,
        url=url,
        log_path=log_path,
        stop_signal=stop_signal,
        _log_offset=offset,
        _log_file=log_file,
    )
