"""The OpenAPI document (at `/openapi.json`) and how errors and security appear in it."""

from __future__ import annotations

import http
from typing import Any

from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import INCLUDE, Schema, fields

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemSchema(Schema):
    """An RFC 9457 problem document; extension members (`errors`, `conflicts`, ...) vary."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), metadata={"description": "messages by field"})


class PearlApi(Api):
    """flask-smorest with our problem responses instead of its own error bodies."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        """Errors are mapped by `api.problems.register`; nothing to add here."""

    def _register_responses(self) -> None:
        """Error responses, as documented, are problem documents (as flask-smorest's own
        registration, with our schema and media type)."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)


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
