"""Who may reach an endpoint at all, decided before its body is read.

Flask-smorest parses and validates a request body before the view runs, so without this a
caller with no token, or a stranger to a world, who sends an invalid body would learn "422"
where the contract says 401 (no valid token) or 404 (no role in the world). This hook asks
for a valid access token on every protected path and, on a world's paths, for some role in
that world (the world it loaded is kept for `authorize`, which still checks the permission,
and so is the branch's row on a branch's paths, for `api.reading.open_branch`).
"""

from __future__ import annotations

from flask import Flask, g, request

from api.security import current_user_id, member_world

API_PREFIX = "/api/v1/"
PUBLIC = frozenset({"/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/auth/refresh"})


def register(app: Flask) -> None:
    @app.before_request
    def gate() -> None:
        if request.method == "OPTIONS" or request.url_rule is None:
            return  # preflights, and unknown paths (404 as they are)
        if not request.path.startswith(API_PREFIX) or request.path in PUBLIC:
            return
        current_user_id()  # 401 problem without a valid access token
        view_args = request.view_args or {}
        world_id = view_args.get("world_id")
        if world_id is not None:
            access = member_world(world_id, view_args.get("branch"))  # 404 without a role
            g.member_world = access.world
            g.access = access
