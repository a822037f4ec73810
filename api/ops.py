"""Operations endpoints at the root: health, readiness and a docs page."""

from __future__ import annotations

from html import escape
from typing import Any

from flask import Flask, Response, current_app
from sqlalchemy import text

from api.services import services

METHODS = ("get", "post", "put", "patch", "delete")
LAG_QUERY = """
    SELECT (SELECT coalesce(max(id), 0) FROM pearl_events),
           coalesce((SELECT position FROM projection_positions WHERE name = 'read_model'), 0)
"""


def register(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> Any:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> Any:
        """Ready when the database and Redis answer and the read model is not far behind."""
        svc = services()
        report: dict[str, Any] = {}
        ready = True
        try:
            with svc.reads.connect() as conn:
                head, position = conn.execute(text(LAG_QUERY)).one()
            lag = int(head) - int(position)
            report["database"] = "ok"
            report["projection"] = {"position": int(position), "head": int(head), "lag": lag}
            if lag > svc.config.ready_max_lag:
                ready = False
        except Exception as error:  # any failure means not ready
            report["database"] = f"down: {type(error).__name__}"
            ready = False
        if svc.config.redis_url:
            report["redis"] = "ok" if svc.cache.ping() else "down"
            ready = ready and report["redis"] == "ok"
        report["status"] = "ready" if ready else "not ready"
        return report, 200 if ready else 503

    @app.get("/docs")
    def docs() -> Response:
        """A self-contained reference page generated from the OpenAPI document."""
        spec = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
        return Response(render_docs(spec), mimetype="text/html")


def render_docs(spec: dict[str, Any]) -> str:
    rows = []
    for path, operations in spec.get("paths", {}).items():
        for method in METHODS:
            if method in operations:
                op = operations[method]
                summary = op.get("summary") or op.get("description") or ""
                codes = ", ".join(sorted(op.get("responses", {})))
                rows.append(
                    f"<tr><td><code>{method.upper()}</code></td><td><code>{escape(path)}</code>"
                    f"</td><td>{escape(summary)}</td><td>{escape(codes)}</td></tr>"
                )
    title = escape(spec.get("info", {}).get("title", "API"))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title} API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:4px 8px;"
        "border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>{title} API</h1><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>."
        " Authenticate with <code>POST /api/v1/auth/token</code> and send "
        "<code>Authorization: Bearer &lt;access_token&gt;</code>.</p>"
        "<table><tr><th>method</th><th>path</th><th>summary</th><th>responses</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
