# syntax=docker/dockerfile:1
# The Space Pearl image: one image for the API (the default command), the projector, the
# suggestion worker and the one-shot migration (docker-compose.yml picks the command).
# Secrets (JWT_SECRET, passwords in DATABASE_URL) come from the environment at run time.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# --- builder: a virtualenv with the runtime dependencies and the project, no dev extras ------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, read from pyproject.toml alone: a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > requirements.txt \
    && pip install --requirement requirements.txt

# Then the project itself (a regular, non-editable install; .dockerignore keeps tests out).
COPY . .
RUN pip install --no-deps . \
    && pip check

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PEARL_ENV=production

# A fixed numeric uid/gid, so orchestrators can check "runs as non-root" without a passwd file.
RUN groupadd --system --gid 10001 pearl \
    && useradd --system --uid 10001 --gid pearl --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin pearl

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# For `alembic upgrade head` (alembic.ini finds migrations/ next to itself). Owned by root: the
# application user reads its code, it cannot change it.
COPY alembic.ini ./
COPY migrations ./migrations

USER 10001:10001
EXPOSE 8000

# /healthz answers 200 while the API process is up (readiness is /readyz).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; r = u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:8000/healthz', timeout=3); sys.exit(r.status != 200)"]

# The same gunicorn settings module and WSGI app as `pearl up` (pearl/launcher.py). Workers:
# WEB_CONCURRENCY (gunicorn reads it). --timeout 300 lets a sync worker take a large streamed
# POST /api/v1/worlds/import (gunicorn's 30 s default would kill it mid-upload); the heartbeat
# file lives in /dev/shm, as the image's filesystem can stall it.
CMD ["gunicorn", "--config", "python:pearl.gunicorn_conf", "--bind", "0.0.0.0:8000", \
     "--timeout", "300", "--graceful-timeout", "25", "--worker-tmp-dir", "/dev/shm", \
     "--no-control-socket", "pearl.wsgi:app"]
