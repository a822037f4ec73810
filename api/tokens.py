"""Access and refresh JWTs: one algorithm, and `exp`, `iat`, `aud`, `iss` always checked."""

from __future__ import annotations

import time
from typing import Any
from uuid import uuid4

import jwt

from pearl.config import Config
from pearl.lru import Lru

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is missing, expired, forged or of the wrong kind."""


def issue(config: Config, user_id: str, kind: str) -> str:
    now = int(time.time())
    ttl = config.access_token_ttl if kind == "access" else config.refresh_token_ttl
    claims = {
        "sub": user_id,
        "typ": kind,
        "iat": now,
        "exp": now + ttl,
        "iss": config.jwt_issuer,
        "aud": config.jwt_audience,
        "jti": str(uuid4()),
    }
    return jwt.encode(claims, config.jwt_secret, algorithm=ALGORITHM)


# Claims of access tokens whose signature and claims were checked, by token, so that a
# client's next requests skip the decoding (its expiry is still checked every time). Only
# valid tokens are kept; a forged one is decoded, and refused, every time.
VERIFIED: Lru[tuple[str, ...], dict[str, Any]] = Lru(4096)


def verify(config: Config, token: str, kind: str) -> dict[str, Any]:
    key = (token, kind, config.jwt_secret, config.jwt_audience, config.jwt_issuer)
    known = VERIFIED.get(key) if kind == "access" else None
    if known is not None:
        if known["exp"] <= time.time():
            raise InvalidToken("the token has expired")
        return known
    claims = _decode(config, token, kind)
    if kind == "access":
        VERIFIED.put(key, claims)
    return claims


def _decode(config: Config, token: str, kind: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            config.jwt_secret,
            algorithms=[ALGORITHM],
            audience=config.jwt_audience,
            issuer=config.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "aud", "iss", "typ"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the token has expired") from None
    except jwt.InvalidTokenError as error:
        raise InvalidToken(f"the token is not valid: {error}") from None
    if claims.get("typ") != kind:
        raise InvalidToken(f"expected an {kind} token")
    return claims


def token_pair(config: Config, user_id: str) -> dict[str, Any]:
    return {
        "access_token": issue(config, user_id, "access"),
        "refresh_token": issue(config, user_id, "refresh"),
        "token_type": "Bearer",
        "expires_in": config.access_token_ttl,
    }
