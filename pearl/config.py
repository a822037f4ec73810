"""Configuration read from the environment, with defaults for the embedded set-up."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SECRET_MARKER = "dev-"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _env_list(name: str) -> tuple[str, ...]:
    """A comma-separated variable as a tuple of its non-empty, stripped items."""
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def data_dir() -> Path:
    """Where embedded servers and development secrets live (`.data/` by default)."""
    return Path(os.environ.get("PEARL_DATA_DIR", ".data")).resolve()


def _development_secret() -> str:
    """A per-checkout random secret kept under `.data/`, never in the repository.

    Written atomically (a private temporary file linked into place), so processes starting
    together all end up with the one secret that won.
    """
    path = data_dir() / "jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".jwt-secret-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(DEFAULT_SECRET_MARKER + secrets.token_urlsafe(32))
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return path.read_text().strip()


@dataclass(frozen=True)
class Config:
    """Settings of one process. Built with `Config.from_env()`."""

    database_url: str
    redis_url: str | None = None
    environment: str = "development"
    jwt_secret: str = field(default="", repr=False)
    jwt_issuer: str = "space-pearl"
    jwt_audience: str = "space-pearl-api"
    access_token_ttl: int = 900
    refresh_token_ttl: int = 14 * 24 * 3600
    max_body_bytes: int = 1024 * 1024
    import_max_bytes: int = 1024**3  # POST /worlds/import streams its body: its own limit
    idempotency_ttl: int = 24 * 3600
    command_retries: int = 10
    min_position_wait: float = 2.0
    ready_max_lag: int = 10_000
    cors_origins: tuple[str, ...] = ()  # exact origins allowed to call from a browser
    login_max_failures: int = 10  # failed logins per username per window before 429
    login_failure_window: int = 15 * 60
    login_max_attempts: int = 50  # login attempts per client IP per window before 429
    login_attempt_window: int = 60
    trusted_proxy_hops: int = 0  # proxies in front whose X-Forwarded-For names the client

    @classmethod
    def from_env(cls, **overrides: object) -> Config:
        database_url = os.environ.get("DATABASE_URL", "")
        environment = os.environ.get("PEARL_ENV", "development")
        secret = os.environ.get("JWT_SECRET") or ""
        if not secret and environment != "production":
            secret = _development_secret()
        values: dict[str, object] = {
            "database_url": database_url,
            "redis_url": os.environ.get("REDIS_URL") or None,
            "environment": environment,
            "jwt_secret": secret,
            "access_token_ttl": _env_int("ACCESS_TOKEN_TTL", 900),
            "refresh_token_ttl": _env_int("REFRESH_TOKEN_TTL", 14 * 24 * 3600),
            "max_body_bytes": _env_int("MAX_BODY_BYTES", 1024 * 1024),
            "import_max_bytes": _env_int("IMPORT_MAX_BYTES", 1024**3),
            "command_retries": _env_int("COMMAND_RETRIES", 10),
            "min_position_wait": _env_float("MIN_POSITION_WAIT", 2.0),
            "ready_max_lag": _env_int("READY_MAX_LAG", 10_000),
            "cors_origins": _env_list("CORS_ORIGINS"),
            "login_max_failures": _env_int("LOGIN_MAX_FAILURES", 10),
            "login_failure_window": _env_int("LOGIN_FAILURE_WINDOW", 15 * 60),
            "login_max_attempts": _env_int("LOGIN_MAX_ATTEMPTS", 50),
            "login_attempt_window": _env_int("LOGIN_ATTEMPT_WINDOW", 60),
            "trusted_proxy_hops": _env_int("TRUSTED_PROXY_HOPS", 0),
        }
        values.update(overrides)
        config = cls(**values)  # type: ignore[arg-type]
        config.check()
        return config

    def check(self) -> None:
        """Refuse settings that must never reach production."""
        if not self.database_url:
            raise ValueError("DATABASE_URL is not set (the launcher sets it for embedded runs)")
        if self.environment == "production" and (
            not self.jwt_secret or self.jwt_secret.startswith(DEFAULT_SECRET_MARKER)
        ):
            raise ValueError("PEARL_ENV=production needs JWT_SECRET set to a strong secret")
        if len(self.jwt_secret) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters")
