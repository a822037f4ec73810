"""The OpenAPI document (at `/openapi.json`) and how errors and security appear in it."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


class PearlApi(Api):
    """flask-smorest with our problem responses instead of its own error bodies."""

    def _register_error_handlers(self) -> None:
        """Errors are mapped by `api.problems.register`; nothing to add here."""


def make_api(app: Flask) -> PearlApi:
    app.config.update(
        API_TITLE="Space Pearl",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": (
                    "Event-sourced history for collaborative world-building. Errors are "
                    "RFC 9457 problem documents (application/problem+json)."
                )
            },
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                }
            },
            "security": [{"bearerAuth": []}],
        },
    )
    return PearlApi(app)
