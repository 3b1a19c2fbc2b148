"""Keep compiled bytecode for `todo-infra` between runs, even where Python is told not to.

uv installs packages without `.pyc` files, and machines that set
`PYTHONDONTWRITEBYTECODE=1` (this team's does) never write them: every `todo-infra plan`
then compiles the Pulumi SDKs from source again, about 5 MB of generated code, most of
a plan's time. The usual reason for that variable is not to litter source and
site-packages directories, so instead of honouring it by recompiling, the CLI writes its
bytecode under a private cache directory (`sys.pycache_prefix`) that it owns: nothing
appears next to any source file.

Opt out with `TODO_INFRA_BYTECODE_CACHE=off`; choose the directory with
`TODO_INFRA_BYTECODE_CACHE=/some/dir`. Stale entries are harmless: Python checks each
cached file against its source's modification time and size.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_VAR = "TODO_INFRA_BYTECODE_CACHE"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "todo-infra" / "pycache"


def enable() -> Path | None:
    """Turn the cache on for this process; return its directory (None when opted out)."""
    setting = os.environ.get(ENV_VAR, "").strip()
    if setting.lower() in {"off", "0", "no", "false"}:
        return None
    cache_dir = Path(setting) if setting else default_cache_dir()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: run uncached rather than fail
    if sys.pycache_prefix is None:
        sys.pycache_prefix = str(cache_dir)
    sys.dont_write_bytecode = False
    return Path(sys.pycache_prefix)
