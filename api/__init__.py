"""HTTP layer: the app factory, blueprints, schemas, identity and error mapping."""

from __future__ import annotations

from flask import Flask

from pearl.config import Config


def create_app(config: Config | None = None) -> Flask:
    """Build the Flask app for `config` (read from the environment when omitted)."""
    from api import gate, metrics, ops, problems, requests
    from api.openapi import make_api
    from api.routes import auth, branches, content, proposals, search, worlds
    from api.routes.archive import blp as archive_blp
    from api.routes.history import blp as history_blp
    from api.services import Services

    config = config or Config.from_env()
    app = Flask("space_pearl")
    app.config.update(
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    app.extensions["pearl"] = Services.build(config)
    api = make_api(app)
    for blueprint in (auth.blp, worlds.blp, branches.blp, content.blp, search.blp, proposals.blp):
        api.register_blueprint(blueprint, url_prefix="/api/v1")
    api.register_blueprint(history_blp, url_prefix="/api/v1")
    api.register_blueprint(archive_blp, url_prefix="/api/v1")

    problems.register(app)
    requests.register(app)
    gate.register(app)
    ops.register(app)
    metrics.register(app)
    return app
