"""Keep compiled bytecode for `todo-infra` between runs, even where Python is told not to.

uv installs packages without `.pyc` files (unless `UV_COMPILE_BYTECODE=1`), and machines
that set
`PYTHONDONTWRITEBYTECODE=1` (this team's does) never write them: every `todo-infra plan`
then compiles the Pulumi SDKs from source again, about 5 MB of generated code, most of
a plan's time. The usual reason for that variable is not to litter source and
site-packages directories, so instead of honouring it by recompiling, the CLI writes its
bytecode under a private cache directory (`sys.pycache_prefix`) that it owns: nothing
appears next to any source file. Where the installer did compile the packages, the
cache stays off: a prefix would hide their bytecode and compile everything once more.

Opt out with `TODO_INFRA_BYTECODE_CACHE=off`; choose the directory with
`TODO_INFRA_BYTECODE_CACHE=/some/dir`. Stale entries are harmless: Python checks each
cached file against its source's modification time and size.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ENV_VAR = "TODO_INFRA_BYTECODE_CACHE"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "todo-infra" / "pycache"


def cache_dir() -> Path | None:
    """Where the CLI keeps what it caches (None when opted out)."""
    setting = os.environ.get(ENV_VAR, "").strip()
    if setting.lower() in {"off", "0", "no", "false"}:
        return None
    return Path(setting) if setting else default_cache_dir()


def installed_with_bytecode(package: str = "pulumi") -> bool:
    """Whether the installer compiled `package` (its `__init__` has a `.pyc`)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None or sys.pycache_prefix is not None:
        return False
    return Path(importlib.util.cache_from_source(spec.origin)).is_file()


def enable() -> Path | None:
    """Turn the cache on for this process when it helps; return its directory, if on."""
    directory = cache_dir()
    if directory is None or installed_with_bytecode():
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: run uncached rather than fail
    if sys.pycache_prefix is None:
        sys.pycache_prefix = str(directory)
    sys.dont_write_bytecode = False
    return Path(sys.pycache_prefix)
