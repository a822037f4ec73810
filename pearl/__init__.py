"""Composition root: configuration, the embedded servers, the launcher and the CLI."""
