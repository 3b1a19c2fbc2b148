"""Names, lifetimes and tags of ephemeral stacks (`dev-<name>`, `pr-<number>`).

The naming and lifetime rules are `apps.contracts.ephemeral`'s, which the settings check
too; this module applies them to what a developer typed, with messages that say how to
fix it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apps.contracts.ephemeral import (
    DEV_PREFIX,
    MAX_NAME_LENGTH,
    MAX_PR_NUMBER,
    MAX_TTL,
    MIN_TTL,
    PR_PREFIX,
    is_ephemeral_stack_name,
)

DEFAULT_TTL = "8h"

# Stack tags (Pulumi allows names of up to 40 characters: letters, digits, `-_.:`).
TAG_KIND = "todo:ephemeral"
TAG_OWNER = "todo:owner"
TAG_EXPIRES = "todo:expires-at"

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TTL_PART = re.compile(r"(\d+)([mhdw])")
_UNIT = {
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


class EphemeralInputError(ValueError):
    """A name, PR number or TTL that cannot be used; the message says what would work."""


@dataclass(frozen=True)
class EphemeralStack:
    """An ephemeral stack as `todo-infra` manages it."""

    name: str
    """The stack name: `dev-<name>` or `pr-<number>`."""
    owner: str

    @property
    def kind(self) -> str:
        return "pr" if self.name.startswith(PR_PREFIX) else "dev"


def dev_stack_name(name: str) -> str:
    """`alice` → `dev-alice`, after checking that it is a short DNS label."""
    name = name.removeprefix(DEV_PREFIX)
    if not name:
        raise EphemeralInputError("name: empty; use something like your handle, e.g. `alice`")
    if len(name) > MAX_NAME_LENGTH:
        raise EphemeralInputError(
            f"name: {name!r} is {len(name)} characters; at most {MAX_NAME_LENGTH} "
            "(it becomes part of a namespace and of database names)"
        )
    if name != name.lower():
        raise EphemeralInputError(f"name: {name!r} has capitals; use {name.lower()!r}")
    if not _NAME.match(name):
        raise EphemeralInputError(
            f"name: {name!r} is not a DNS label: use a-z, 0-9 and '-', starting and ending "
            "with a letter or digit"
        )
    return f"{DEV_PREFIX}{name}"


def pr_stack_name(number: int) -> str:
    """`42` → `pr-42`."""
    if not 1 <= number <= MAX_PR_NUMBER:
        raise EphemeralInputError(
            f"pull request number: got {number}; expected 1 to {MAX_PR_NUMBER}"
        )
    return f"{PR_PREFIX}{number}"


def is_ephemeral_stack(name: str) -> bool:
    """Whether a stack name (possibly `org/project/name`) is one of ours to reap."""
    return is_ephemeral_stack_name(name.rsplit("/", 1)[-1])


def parse_ttl(text: str) -> timedelta:
    """`8h`, `90m`, `2d`, `1d12h`, `1w` → timedelta, between 10 minutes and 7 days."""
    compact = text.strip().lower().replace(" ", "")
    parts = _TTL_PART.findall(compact)
    if not compact or "".join(f"{n}{u}" for n, u in parts) != compact:
        raise EphemeralInputError(
            f"ttl: {text!r} is not a duration; write e.g. 90m, 8h, 2d or 1d12h"
        )
    ttl = sum((int(n) * _UNIT[u] for n, u in parts), timedelta())
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise EphemeralInputError(
            f"ttl: {text!r} is {_human(ttl)}; it must be between {_human(MIN_TTL)} and "
            f"{_human(MAX_TTL)} (run `up` again to extend it)"
        )
    return ttl


def _human(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    return "".join(parts) or "0m"


def format_expiry(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as the stack tag and the settings hold it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_expiry(text: str) -> datetime | None:
    """The expiry tag's moment, or None when it is missing or unreadable."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def remaining(expires_at: datetime | None, now: datetime) -> str:
    """`3h12m left`, `expired 2h ago` or `no expiry`."""
    if expires_at is None:
        return "no expiry"
    delta = expires_at - now
    if delta >= timedelta():
        return f"{_human(delta)} left"
    return f"expired {_human(-delta)} ago"


def owner_label(owner: str) -> str:
    """An owner (GitHub login, e-mail, user name) fit for a tag and the settings."""
    cleaned = re.sub(r"[^A-Za-z0-9_.@-]", "-", owner.strip())[:64]
    if not cleaned:
        raise EphemeralInputError("owner: empty; pass --owner or log in to Pulumi")
    return cleaned
