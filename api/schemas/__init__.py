"""Marshmallow schemas: the shapes of request and response bodies."""
