"""Bodies of the identity endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class RegisterSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=320))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=10, max=1024)
    )
    display_name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class TokenRequestSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(max=320))
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
