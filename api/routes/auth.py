"""Identity: register, log in, refresh, and who am I."""

from __future__ import annotations

import logging
from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from api import users
from api.problems import ApiProblem
from api.ratelimit import client_ip, login_limiter, normalise_username
from api.schemas.auth import (
    RefreshSchema,
    RegisterSchema,
    TokenRequestSchema,
    TokenSchema,
    UserSchema,
)
from api.security import current_user_id, unauthorized
from api.services import services
from api.tokens import InvalidToken, token_pair, verify

blp = Blueprint("auth", __name__, description="Accounts and tokens")
log = logging.getLogger(__name__)


@blp.route("/auth/register")
class Register(MethodView):
    @blp.arguments(RegisterSchema())
    @blp.response(201, UserSchema)
    def post(self, body: dict[str, Any]) -> Any:
        """Create an account (email, password of at least 10 characters, display name)."""
        user = users.register(
            services().engine, body["email"], body["password"], body["display_name"]
        )
        return user, 201, {"Location": "/api/v1/me"}


@blp.route("/auth/token")
class Token(MethodView):
    @blp.arguments(TokenRequestSchema())
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, body: dict[str, Any]) -> Any:
        """Exchange email and password for an access and a refresh token.

        Failed logins are limited per account and attempts per client address: over a limit
        the answer is 429 with `Retry-After`; a successful login clears the account's count.
        """
        username = normalise_username(body["email"])
        ip = client_ip(services().config)
        limiter = login_limiter()
        try:
            limiter.check(username, ip)
        except ApiProblem:
            _log_failure(username, ip, "rate limited")
            raise
        user = users.authenticate(services().engine, body["email"], body["password"])
        if user is None:
            limiter.failed(username)
            _log_failure(username, ip, "wrong email or password")
            raise unauthorized("wrong email or password")
        limiter.succeeded(username)
        return token_pair(services().config, user["id"])


def _log_failure(username: str, ip: str, reason: str) -> None:
    """One line per refused login: who, from where, which request, why. Never the password."""
    log.warning(
        "failed login: username=%r ip=%s request_id=%s reason=%s",
        username[:320],
        ip,
        g.get("request_id", ""),
        reason,
    )


@blp.route("/auth/refresh")
class Refresh(MethodView):
    @blp.arguments(RefreshSchema())
    @blp.response(200, TokenSchema)
    def post(self, body: dict[str, Any]) -> Any:
        """Exchange a refresh token for a new pair of tokens."""
        config = services().config
        try:
            claims = verify(config, body["refresh_token"], "refresh")
        except InvalidToken as error:
            raise unauthorized(str(error)) from None
        if users.find(services().engine, str(claims["sub"])) is None:
            raise unauthorized("the account no longer exists")
        return token_pair(config, str(claims["sub"]))


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, UserSchema)
    def get(self) -> Any:
        """The account the access token belongs to."""
        user = users.find(services().engine, current_user_id())
        if user is None:
            raise unauthorized("the account no longer exists")
        return user
