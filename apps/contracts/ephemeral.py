"""Ephemeral stacks: `dev-<name>` and `pr-<number>`, and how long they may live.

The stack name becomes a Kubernetes namespace and part of database and topic names, so
it is a short DNS label.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

MIN_TTL: Final = timedelta(minutes=10)
MAX_TTL: Final = timedelta(days=7)
MAX_NAME_LENGTH: Final = 20
"""Characters after `dev-`."""
MAX_PR_NUMBER: Final = 999_999
DEV_PREFIX: Final = "dev-"
PR_PREFIX: Final = "pr-"

STACK_NAME: Final = re.compile(
    rf"{DEV_PREFIX}[a-z0-9]([-a-z0-9]{{0,{MAX_NAME_LENGTH - 2}}}[a-z0-9])?"
    rf"|{PR_PREFIX}[0-9]{{1,{len(str(MAX_PR_NUMBER))}}}"
)


def is_ephemeral_stack_name(name: str) -> bool:
    """Whether a short stack name is one an ephemeral stack may have."""
    return STACK_NAME.fullmatch(name) is not None
