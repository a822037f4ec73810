"""Access tokens: claims of a checked token are kept, its expiry still counts every time, and
a forged or refresh token is never kept."""

from __future__ import annotations

import time
from uuid import uuid4

import jwt
import pytest

from api import tokens
from api.tokens import VERIFIED, InvalidToken, issue, verify
from pearl.config import Config


def config(secret: str = "k" * 40, ttl: int = 900) -> Config:
    return Config(database_url="postgresql://unused", jwt_secret=secret, access_token_ttl=ttl)


def kept(cfg: Config, token: str, kind: str = "access") -> bool:
    key = (token, kind, cfg.jwt_secret, cfg.jwt_audience, cfg.jwt_issuer)
    return VERIFIED.get(key) is not None


def test_a_checked_access_token_is_kept_and_answers_the_same_claims() -> None:
    cfg = config()
    user = str(uuid4())
    token = issue(cfg, user, "access")
    assert not kept(cfg, token)
    first = verify(cfg, token, "access")
    assert kept(cfg, token)
    assert verify(cfg, token, "access") == first and first["sub"] == user


def test_a_kept_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(ttl=60)
    token = issue(cfg, str(uuid4()), "access")
    verify(cfg, token, "access")
    assert kept(cfg, token)
    later = time.time() + 61
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(InvalidToken, match="expired"):
        verify(cfg, token, "access")


def test_a_token_signed_with_another_secret_is_refused_every_time_and_never_kept() -> None:
    cfg = config()
    forged = issue(config(secret="f" * 40), str(uuid4()), "access")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verify(cfg, forged, "access")
    assert not kept(cfg, forged)


def test_a_token_kept_under_one_secret_is_not_valid_under_another() -> None:
    token = issue(config(), str(uuid4()), "access")
    verify(config(), token, "access")
    with pytest.raises(InvalidToken):
        verify(config(secret="o" * 40), token, "access")


def test_refresh_tokens_are_decoded_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config()
    token = issue(cfg, str(uuid4()), "refresh")
    calls: list[str] = []
    real = jwt.decode

    def counting(*args: object, **kwargs: object) -> object:
        calls.append("decode")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tokens.jwt, "decode", counting)
    verify(cfg, token, "refresh")
    verify(cfg, token, "refresh")
    assert calls == ["decode", "decode"] and not kept(cfg, token, "refresh")


def test_a_kept_access_token_is_not_accepted_as_a_refresh_token() -> None:
    cfg = config()
    token = issue(cfg, str(uuid4()), "access")
    verify(cfg, token, "access")
    with pytest.raises(InvalidToken, match="refresh"):
        verify(cfg, token, "refresh")
