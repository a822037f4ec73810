"""Blueprints: one per resource, one MethodView per URL."""
