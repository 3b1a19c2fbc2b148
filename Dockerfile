# Images of the three services: one file, one target per service.
#
#   docker build --target backend      -t todo-backend:dev .
#   docker build --target notification -t todo-notification:dev .
#   docker build --target recurring    -t todo-recurring:dev .
#
# Each image serves `uvicorn apps.<service>.main:app` on port 8000 as an unprivileged
# user and works with a read-only root filesystem (nothing is written outside /tmp:
# bytecode is compiled here, PYTHONDONTWRITEBYTECODE stops Python from trying). The
# backend image also runs the migrations: `alembic upgrade head` (the migration Job).
# Every image carries all of apps/ but the local stand-ins, because the migration
# environment imports every service's models (apps/shared/model_registry.py).

# --------------------------------------------------------------------------- base
# python:3.11-slim-bookworm pinned by digest (multi-arch index: linux/amd64, linux/arm64);
# Dependabot's docker ecosystem keeps it current. 3.11 is the interpreter tests run on.
FROM python:3.11-slim-bookworm@sha256:b18992999dbe963a45a8a4da40ac2b1975be1a776d939d098c647482bcad5cba AS python

# --------------------------------------------------------------------------- build
FROM python AS build

# uv from PyPI, pinned by version and by the hashes of its Linux wheels (x86_64, aarch64).
# The same uv version as CI, so that it reads uv.lock exactly as the lock was written.
ARG UV_VERSION=0.13.9
RUN printf '%s\n' \
        "uv==${UV_VERSION} \\" \
        "  --hash=sha256:d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19 \\" \
        "  --hash=sha256:5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe" \
        > /tmp/uv-requirements.txt \
    && python -m pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
        --require-hashes --requirement /tmp/uv-requirements.txt

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Runtime dependencies only (the project's own dependencies; no `infra`, no `dev` group),
# exactly as locked. The project itself is not installed: its code is copied below, so
# this layer is reused until the lock changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-default-groups --no-dev --no-install-project

# The services' packages, each named: the local runner and stand-ins (apps/local, for
# development machines) are never copied, so no image can carry them.
COPY apps/__init__.py ./apps/
COPY apps/contracts/ ./apps/contracts/
COPY apps/shared/ ./apps/shared/
COPY apps/backend/ ./apps/backend/
COPY apps/notification/ ./apps/notification/
COPY apps/recurring/ ./apps/recurring/
COPY migrations/ ./migrations/
# unchecked-hash pycs stay valid whatever the file times are after COPY.
RUN python -m compileall -q --invalidation-mode unchecked-hash apps migrations

# --------------------------------------------------------------------------- runtime
FROM python AS runtime

ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Todo platform" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    PATH=/app/.venv/bin:$PATH \
    HOME=/tmp \
    TMPDIR=/tmp

# A fixed, numeric, unprivileged identity (Kubernetes' runAsNonRoot checks the number).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app

WORKDIR /app
# Owned by root and not writable by the app user: the code cannot be changed at runtime.
COPY --from=build --chown=root:root /app/.venv /app/.venv
COPY --from=build --chown=root:root /app/apps /app/apps
COPY --from=build --chown=root:root /app/migrations /app/migrations
COPY --chown=root:root pyproject.toml /app/pyproject.toml

USER 10001:10001
EXPOSE 8000

# Docker and Compose use this; Kubernetes ignores it and probes /healthz and /readyz.
# Liveness only (no database round trip), with the interpreter already in the image.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]

# --------------------------------------------------------------------------- services
FROM runtime AS backend
LABEL org.opencontainers.image.title="todo-backend" \
      org.opencontainers.image.description="Todo task API; also runs the migrations (alembic upgrade head)."
CMD ["uvicorn", "apps.backend.main:app", "--host", "0.0.0.0", "--port", "8000", "--no-server-header", "--http", "apps.shared.http_limits:LimitedHttpToolsProtocol"]

FROM runtime AS notification
LABEL org.opencontainers.image.title="todo-notification" \
      org.opencontainers.image.description="Todo notification service: reminders to in-app and webhook notifications."
CMD ["uvicorn", "apps.notification.main:app", "--host", "0.0.0.0", "--port", "8000", "--no-server-header", "--http", "apps.shared.http_limits:LimitedHttpToolsProtocol"]

FROM runtime AS recurring
LABEL org.opencontainers.image.title="todo-recurring" \
      org.opencontainers.image.description="Todo recurring-task service: next occurrence on task.completed."
CMD ["uvicorn", "apps.recurring.main:app", "--host", "0.0.0.0", "--port", "8000", "--no-server-header", "--http", "apps.shared.http_limits:LimitedHttpToolsProtocol"]
