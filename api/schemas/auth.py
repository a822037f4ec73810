"""Bodies of the identity endpoints."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate


def no_nul(value: str) -> None:
    """PostgreSQL text cannot hold NUL: refuse it as invalid rather than fail storing it."""
    if "\x00" in value:
        raise ValidationError("must not contain NUL characters")


class RegisterSchema(Schema):
    email = fields.Email(required=True, validate=[validate.Length(max=320), no_nul])
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=10, max=1024)
    )
    display_name = fields.String(required=True, validate=[validate.Length(min=1, max=200), no_nul])


class TokenRequestSchema(Schema):
    email = fields.String(required=True, validate=[validate.Length(max=320), no_nul])
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=1024))


class RefreshSchema(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(max=4096))


class UserSchema(Schema):
    id = fields.String(dump_only=True)
    email = fields.String()
    display_name = fields.String()


class TokenSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
