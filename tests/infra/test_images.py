"""The service images, checked without a Docker engine (none runs here).

What can go wrong in an image without building it: a target or entry point that does not
match the contract, an unpinned base, a root user, and — the one that bites at start-up —
code that imports a package the image does not install (`uv sync --no-default-groups`
installs the project's own dependencies only). The last is checked against uv.lock.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.contracts.services import APP_IDS
from apps.shared import http_limits

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
RUNTIME_CODE = ("apps", "migrations")
DEV_ONLY = ("apps/local",)


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _stages() -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in _instructions():
        if keyword == "FROM":
            name = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
            current = stages.setdefault(name, [])
        current.append((keyword, rest))
    return stages


def test_one_target_per_service_with_the_contract_entry_point() -> None:
    stages = _stages()
    for service in APP_IDS:
        assert service in stages, f"no `FROM ... AS {service}` target"
        cmds = [rest for keyword, rest in stages[service] if keyword == "CMD"]
        assert cmds, f"{service} has no CMD"
        argv = ast.literal_eval(cmds[-1])  # exec form: a JSON/Python list
        assert argv[:2] == ["uvicorn", f"apps.{service}.main:app"]
        assert argv[argv.index("--port") + 1] == "8000"
        assert argv[argv.index("--host") + 1] == "0.0.0.0"
        # The header limit lives in the protocol class (apps/shared/http_limits.py).
        assert argv[argv.index("--http") + 1] == http_limits.PROTOCOL


def test_base_is_pinned_and_user_is_numeric_non_root() -> None:
    instructions = _instructions()
    external = [
        rest.split()[0]
        for keyword, rest in instructions
        if keyword == "FROM" and rest.split()[0] not in _stages()
    ]
    assert external, "no base image"
    for image in external:
        assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"{image} is not pinned by digest"
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users, "no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, users[-1]
    assert any(keyword == "HEALTHCHECK" for keyword, _ in instructions)
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "UV_COMPILE_BYTECODE=1" in env


def test_dependencies_come_from_the_lock_without_dev_or_infra() -> None:
    syncs = [rest for keyword, rest in _instructions() if keyword == "RUN" and "uv sync" in rest]
    assert syncs
    for command in syncs:
        for flag in ("--frozen", "--no-default-groups", "--no-dev"):
            assert flag in command, f"{flag} missing in {command}"
        assert "--group" not in command and "--all-groups" not in command


def _runtime_files() -> Iterator[Path]:
    for top in RUNTIME_CODE:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if not any(relative.startswith(prefix + "/") for prefix in DEV_ONLY):
                yield path


def _imported_top_level_names(path: Path) -> set[str]:
    """Top-level modules a file imports at run time (TYPE_CHECKING blocks excluded)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _runtime_distributions() -> set[str]:
    """Distributions `uv sync --frozen --no-default-groups --no-dev` installs (from uv.lock)."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    exported = subprocess.run(
        [
            uv,
            "export",
            "--frozen",
            "--no-default-groups",
            "--no-dev",
            "--no-hashes",
            "--no-emit-project",
            "--no-header",
            "--no-annotate",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = set()
    for line in exported.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)", line.strip())
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def test_runtime_code_imports_only_what_the_image_installs() -> None:
    runtime = _runtime_distributions()
    assert {"fastapi", "uvicorn", "alembic"} <= runtime
    assert "pytest" not in runtime and "pulumi" not in runtime  # dev and infra stay out
    providers = importlib.metadata.packages_distributions()
    first_party = {"apps", "migrations"}
    missing: dict[str, list[str]] = {}
    third_party: set[str] = set()
    for path in _runtime_files():
        for name in _imported_top_level_names(path):
            if name in first_party or name in sys.stdlib_module_names or name == "__future__":
                continue
            third_party.add(name)
            dists = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(name, [])}
            if not dists & runtime:
                missing.setdefault(name, []).append(path.relative_to(ROOT).as_posix())
    assert {"fastapi", "sqlalchemy", "alembic"} <= third_party  # the scan sees real imports
    assert not missing, (
        "runtime code imports packages the image does not install "
        f"(add them to [project.dependencies]): {missing}"
    )


def test_service_entry_points_exist() -> None:
    assert [s for s in APP_IDS if not (ROOT / "apps" / s / "main.py").is_file()] == []
    assert (ROOT / "migrations" / "env.py").is_file()


def test_build_context_leaves_out_what_images_do_not_need() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "the context should start from nothing"
    included = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert included == {"pyproject.toml", "uv.lock", "apps", "migrations"}
    assert "apps/local/" in rules
    copied: set[str] = set()
    for keyword, rest in _instructions():
        if keyword != "COPY" or "--from" in rest:
            continue
        *sources, _destination = [token for token in rest.split() if not token.startswith("--")]
        copied.update(source.rstrip("/") for source in sources)
    within = {path for path in copied if any(path.startswith(f"{top}/") for top in included)}
    assert copied - within <= included, copied
    # The app packages are named one by one: every package under apps/ but the local
    # runner, so a new package is copied deliberately and apps/local never is.
    packages = {
        f"apps/{path.name}"
        for path in (ROOT / "apps").iterdir()
        if (path / "__init__.py").is_file() and f"apps/{path.name}" not in DEV_ONLY
    }
    assert {path for path in copied if path.startswith("apps/")} == packages | {"apps/__init__.py"}
    assert not [rest for keyword, rest in _instructions() if keyword == "RUN" and "rm " in rest]


def _snapshot(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*")}


def test_runtime_only_environment_starts_the_services_and_migrates(tmp_path: Path) -> None:
    """Rebuild the image's /app without Docker and import what the containers run.

    The environment is what the Dockerfile's `uv sync` installs (from the local uv cache,
    offline); the code tree is what it copies. Importing each service's ASGI app and
    running the migrations offline (`alembic upgrade head --sql`) must work there, and
    must write nothing into the tree (the containers' root filesystem is read-only).
    """
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    app_dir, venv = tmp_path / "app", tmp_path / "venv"
    app_dir.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy2(ROOT / name, app_dir / name)
    env = {
        # The project's own uv settings stay out, except the cache this run filled.
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("UV_", "VIRTUAL_ENV")) or k == "UV_CACHE_DIR"
        },
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": str(Path(sys.executable).resolve()),
    }
    sync = subprocess.run(
        [
            uv,
            "sync",
            "--frozen",
            "--offline",
            "--no-default-groups",
            "--no-dev",
            "--no-install-project",
            "--quiet",
        ],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if sync.returncode != 0 and "offline" in sync.stderr.lower():
        pytest.skip(f"the locked wheels are not in the local uv cache: {sync.stderr[-300:]}")
    assert sync.returncode == 0, sync.stderr
    for top in RUNTIME_CODE:
        shutil.copytree(
            ROOT / top,
            app_dir / top,
            ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", *(p.split("/")[-1] for p in DEV_ONLY)
            ),
        )
    before = _snapshot(app_dir)
    run_env = {**env, "PYTHONDONTWRITEBYTECODE": "1", "DATABASE_URL": "postgresql://u:p@db/todo"}
    python = str(venv / "bin" / "python")

    services = [s for s in APP_IDS if (ROOT / "apps" / s / "main.py").is_file()]
    assert "backend" in services
    for service in services:
        started = subprocess.run(
            [python, "-c", f"import apps.{service}.main as m; print(type(m.app).__name__)"],
            cwd=app_dir,
            env=run_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert started.returncode == 0, f"{service}: {started.stderr[-2000:]}"
        assert started.stdout.strip() == "FastAPI"
    migrated = subprocess.run(
        [str(venv / "bin" / "alembic"), "upgrade", "head", "--sql"],
        cwd=app_dir,
        env=run_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    assert "CREATE TABLE" in migrated.stdout
    assert _snapshot(app_dir) == before, "running the code wrote into the image's tree"
