"""Field paths inside resource inputs, written the way people read them.

`spec.template.spec.containers[name=backend].image`, `metadata.annotations["dapr.io/app-id"]`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Named:
    """A list element picked by its `name` (containers, env vars, ports, volumes)."""

    name: str

    def __str__(self) -> str:
        return f"[name={self.name}]"


PathPart = str | int | Named
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_path(parts: Sequence[PathPart]) -> str:
    """Render path parts; keys that are not plain identifiers are quoted in brackets."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, Named):
            text += str(part)
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            escaped = part.replace("\\", "\\\\").replace('"', '\\"')
            text += f'["{escaped}"]'
    return text or "(root)"


def path_matches(parts: Sequence[PathPart], pattern: Sequence[str]) -> bool:
    """Whether `parts` starts with `pattern`; `*` in the pattern matches any one part."""
    if len(parts) < len(pattern):
        return False
    return all(
        want == "*" or (isinstance(got, str) and got == want)
        for got, want in zip(parts, pattern, strict=False)
    )


class Absent:
    """The value at a path that does not exist."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent()


def named_items(items: Sequence[Any]) -> dict[str, Any] | None:
    """Index a list by item `name` when every item is an object with a unique name."""
    if not items or not all(
        isinstance(item, Mapping) and isinstance(item.get("name"), str) for item in items
    ):
        return None
    named = {str(item["name"]): item for item in items}
    return named if len(named) == len(items) else None


def paths_to(
    tree: Any, predicate: Callable[[Any], bool], prefix: tuple[PathPart, ...] = ()
) -> Iterator[tuple[PathPart, ...]]:
    """Paths of every value in `tree` for which `predicate` holds (not descending into it)."""
    if predicate(tree):
        yield prefix
    elif isinstance(tree, Mapping):
        for key, item in tree.items():
            yield from paths_to(item, predicate, (*prefix, str(key)))
    elif isinstance(tree, list):
        named = named_items(tree)
        for index, item in enumerate(tree):
            part: PathPart = Named(str(item["name"])) if named else index
            yield from paths_to(item, predicate, (*prefix, part))


def value_at(tree: Any, parts: Sequence[PathPart]) -> Any:
    """The value at `parts` in `tree`, or ABSENT."""
    for part in parts:
        if isinstance(part, Named):
            named = named_items(tree) if isinstance(tree, list) else None
            tree = named.get(part.name, ABSENT) if named else ABSENT
        elif isinstance(part, int):
            tree = tree[part] if isinstance(tree, list) and part < len(tree) else ABSENT
        else:
            tree = tree.get(part, ABSENT) if isinstance(tree, Mapping) else ABSENT
    return tree
