"""Accounts and tokens over real HTTP: register, log in, who am I, refresh, refused tokens."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import jwt
import pytest
import requests

from tests.e2e.conftest import PASSWORD, Server, User
from tests.e2e.support import TIMEOUT, assert_invalid, assert_problem, media_type

ISSUER = "space-pearl"
AUDIENCE = "space-pearl-api"


def fresh_email() -> str:
    return f"id-{uuid4().hex[:12]}@example.com"


def register(server: Server, body: Any) -> requests.Response:
    return requests.post(f"{server.api}/auth/register", json=body, timeout=TIMEOUT)


def token(server: Server, email: str, password: str) -> requests.Response:
    return requests.post(
        f"{server.api}/auth/token", json={"email": email, "password": password}, timeout=TIMEOUT
    )


def me(server: Server, headers: dict[str, str]) -> requests.Response:
    return requests.get(f"{server.api}/me", headers=headers, timeout=TIMEOUT)


def refresh(server: Server, refresh_token: Any) -> requests.Response:
    return requests.post(
        f"{server.api}/auth/refresh", json={"refresh_token": refresh_token}, timeout=TIMEOUT
    )


@pytest.fixture(scope="module")
def account(register: Callable[[], User]) -> User:
    """One logged-in account shared by the read-only tests of this module."""
    return register()


class TestRegistering:
    def test_a_new_account_is_created_and_shown_without_its_password(self, server: Server) -> None:
        email = fresh_email()
        response = register(
            server, {"email": email, "password": PASSWORD, "display_name": "Bilbo Baggins"}
        )
        assert response.status_code == 201, response.text
        assert media_type(response) == "application/json"
        body = response.json()
        assert body["email"] == email
        assert body["display_name"] == "Bilbo Baggins"
        assert isinstance(body["id"], str) and body["id"]
        assert "password" not in body
        assert "password_hash" not in body
        assert PASSWORD not in response.text

    def test_an_email_already_taken_in_another_case_is_a_conflict(self, server: Server) -> None:
        email = fresh_email()
        first = register(server, {"email": email, "password": PASSWORD, "display_name": "A"})
        assert first.status_code == 201, first.text
        again = register(
            server, {"email": email.upper(), "password": PASSWORD, "display_name": "B"}
        )
        assert_problem(again, 409)
        exact = register(server, {"email": email, "password": PASSWORD, "display_name": "C"})
        assert_problem(exact, 409)

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"email": "not-an-email"}, "email"),
            ({"email": "two@@example.com"}, "email"),
            ({"password": "123456789"}, "password"),
            ({"display_name": ""}, "display_name"),
            ({"display_name": "x" * 201}, "display_name"),
            ({"nickname": "bilbo"}, "nickname"),
            ({"password": 1234567890123}, "password"),
        ],
        ids=[
            "malformed-email",
            "double-at-email",
            "password-of-9-chars",
            "empty-display-name",
            "display-name-of-201-chars",
            "unknown-field",
            "password-not-a-string",
        ],
    )
    def test_an_invalid_field_is_a_422_keyed_by_that_field(
        self, server: Server, change: dict[str, Any], field: str
    ) -> None:
        body = {"email": fresh_email(), "password": PASSWORD, "display_name": "Tester", **change}
        assert_invalid(register(server, body), field)

    @pytest.mark.parametrize("missing", ["email", "password", "display_name"])
    def test_a_missing_field_is_a_422_keyed_by_that_field(
        self, server: Server, missing: str
    ) -> None:
        body = {"email": fresh_email(), "password": PASSWORD, "display_name": "Tester"}
        del body[missing]
        assert_invalid(register(server, body), missing)

    def test_a_password_of_exactly_10_characters_is_enough(self, server: Server) -> None:
        response = register(
            server, {"email": fresh_email(), "password": "0123456789", "display_name": "T"}
        )
        assert response.status_code == 201, response.text

    @pytest.mark.parametrize("raw", ["[1, 2]", '"email"', "42", "true"])
    def test_a_json_body_that_is_not_an_object_is_a_422(self, server: Server, raw: str) -> None:
        response = requests.post(
            f"{server.api}/auth/register",
            data=raw,
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT,
        )
        assert_invalid(response)

    @pytest.mark.parametrize("raw", ['{"email": ', "{'email': 'a'}", "{]"])
    def test_malformed_json_is_a_400_problem(self, server: Server, raw: str) -> None:
        response = requests.post(
            f"{server.api}/auth/register",
            data=raw,
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT,
        )
        assert_problem(response, 400)


class TestLoggingIn:
    def test_the_token_response_has_an_access_and_a_refresh_token(
        self, server: Server, account: User
    ) -> None:
        response = token(server, account.email, PASSWORD)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
        assert isinstance(body["access_token"], str) and body["access_token"].count(".") == 2
        assert isinstance(body["refresh_token"], str) and body["refresh_token"].count(".") == 2
        assert body["access_token"] != body["refresh_token"]

    def test_the_email_is_matched_in_any_case(self, server: Server, account: User) -> None:
        response = token(server, account.email.upper(), PASSWORD)
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize("who", ["wrong-password", "unknown-email", "empty-password"])
    def test_wrong_credentials_are_a_401_problem(
        self, server: Server, account: User, who: str
    ) -> None:
        email, password = {
            "wrong-password": (account.email, PASSWORD + "!"),
            "unknown-email": (fresh_email(), PASSWORD),
            "empty-password": (account.email, ""),
        }[who]
        body = assert_problem(token(server, email, password), 401)
        assert "access_token" not in body

    def test_me_is_the_account_the_token_belongs_to(self, server: Server, account: User) -> None:
        response = me(server, account.auth)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == account.id
        assert body["email"] == account.email
        assert body["display_name"] == "Tester"
        assert "password" not in body


def _claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "typ": "access",
        "iat": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _crafted(kind: str, server: Server, user: User) -> dict[str, str]:
    """Authorization headers for a token forged or spoiled in the way `kind` names."""
    secret = server.jwt_secret
    now = int(time.time())

    def bearer(claims: dict[str, Any], key: str | None = secret, alg: str = "HS256") -> str:
        return "Bearer " + jwt.encode(claims, key, algorithm=alg)

    headers = {
        "no-header": None,
        "empty-bearer": "Bearer ",
        "garbage": "Bearer not.a.token",
        "basic-scheme": f"Basic {user.token}",
        "token-without-scheme": user.token,
        "expired": bearer(_claims(user.id, iat=now - 3600, exp=now - 120)),
        "other-key": bearer(_claims(user.id), key="another-secret-" + "k" * 40),
        "alg-none": bearer(_claims(user.id), key=None, alg="none"),
        "wrong-audience": bearer(_claims(user.id, aud="someone-else")),
        "wrong-issuer": bearer(_claims(user.id, iss="evil-issuer")),
        "refresh-as-access": f"Bearer {user.refresh_token}",
        "crafted-refresh": bearer(_claims(user.id, typ="refresh")),
        "no-typ": bearer(_claims(user.id, typ=None)),
        "no-exp": bearer(_claims(user.id, exp=None)),
        "tampered-subject": _tampered(user.token),
    }[kind]
    return {} if headers is None else {"Authorization": headers}


def _tampered(token_text: str) -> str:
    """The token with its payload replaced by another user's, keeping the old signature."""
    header, _, signature = token_text.split(".")
    payload = jwt.utils.base64url_encode(
        jwt.utils.force_bytes(
            '{"sub":"' + str(uuid4()) + '","typ":"access","iat":1,"exp":99999999999,'
            '"iss":"space-pearl","aud":"space-pearl-api"}'
        )
    ).decode()
    return f"Bearer {header}.{payload}.{signature}"


REFUSED = [
    "no-header",
    "empty-bearer",
    "garbage",
    "basic-scheme",
    "token-without-scheme",
    "expired",
    "other-key",
    "alg-none",
    "wrong-audience",
    "wrong-issuer",
    "refresh-as-access",
    "crafted-refresh",
    "no-typ",
    "no-exp",
    "tampered-subject",
]


class TestRefusedAccessTokens:
    def test_a_token_crafted_with_the_server_key_and_right_claims_is_accepted(
        self, server: Server, account: User
    ) -> None:
        forged = jwt.encode(_claims(account.id), server.jwt_secret, algorithm="HS256")
        response = me(server, {"Authorization": f"Bearer {forged}"})
        assert response.status_code == 200, response.text
        assert response.json()["id"] == account.id

    @pytest.mark.parametrize("kind", REFUSED)
    def test_me_refuses_the_token_with_401_and_a_bearer_challenge(
        self, server: Server, account: User, kind: str
    ) -> None:
        response = me(server, _crafted(kind, server, account))
        assert_problem(response, 401)
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), response.headers

    def test_a_protected_world_endpoint_refuses_a_missing_token_too(self, server: Server) -> None:
        response = requests.get(f"{server.api}/worlds", timeout=TIMEOUT)
        assert_problem(response, 401)
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


class TestRefreshing:
    def test_a_refresh_token_gives_a_new_working_pair(
        self, server: Server, register: Callable[[], User]
    ) -> None:
        user = register()
        response = refresh(server, user.refresh_token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
        assert body["access_token"] != user.token
        assert body["refresh_token"] != user.refresh_token
        who = me(server, {"Authorization": f"Bearer {body['access_token']}"})
        assert who.status_code == 200, who.text
        assert who.json()["id"] == user.id
        again = refresh(server, body["refresh_token"])
        assert again.status_code == 200, again.text

    @pytest.mark.parametrize(
        "kind", ["access-token", "garbage", "other-key", "expired", "wrong-audience"]
    )
    def test_anything_but_a_valid_refresh_token_is_a_401(
        self, server: Server, account: User, kind: str
    ) -> None:
        now = int(time.time())
        claims = _claims(account.id, typ="refresh")
        candidate = {
            "access-token": account.token,
            "garbage": "garbage",
            "other-key": jwt.encode(claims, "another-secret-" + "k" * 40, algorithm="HS256"),
            "expired": jwt.encode(
                {**claims, "iat": now - 3600, "exp": now - 120},
                server.jwt_secret,
                algorithm="HS256",
            ),
            "wrong-audience": jwt.encode(
                {**claims, "aud": "someone-else"}, server.jwt_secret, algorithm="HS256"
            ),
        }[kind]
        body = assert_problem(refresh(server, candidate), 401)
        assert "access_token" not in body

    def test_a_refresh_body_without_the_token_is_a_422(self, server: Server) -> None:
        response = requests.post(f"{server.api}/auth/refresh", json={}, timeout=TIMEOUT)
        assert_invalid(response, "refresh_token")
