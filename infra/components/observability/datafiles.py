"""Where the observability data files live, and how their namespace placeholder is filled.

The alert rules, the SLOs and the dashboards are data files under `infra/observability/`
so that they can be reviewed (and their PromQL checked) on their own. The rules and the
SLOs select the apps' series by namespace; the files say `__APPS_NAMESPACES__` and the
program fills in the stack's namespaces.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "observability"
DASHBOARDS_DIR = DATA_DIR / "dashboards"
ALERT_RULES_FILE = DATA_DIR / "alert-rules.yaml"
NAMESPACES_PLACEHOLDER = "__APPS_NAMESPACES__"
"""Stands in the rules and SLO files for the regex of the apps' namespaces."""
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def namespaces_regex(namespaces: Sequence[str]) -> str:
    """A regex (PromQL anchors it) matching exactly these namespace names.

    Namespace names are DNS labels, which hold no regex metacharacters; they are checked
    rather than escaped, because PromQL strings reject escapes such as `\\-`.
    """
    if not namespaces:
        raise ValueError("apps_namespaces must name at least one namespace")
    for namespace in namespaces:
        if not _DNS_LABEL.fullmatch(namespace):
            raise ValueError(f"apps_namespaces: {namespace!r} is not a namespace name")
    return "|".join(sorted(set(namespaces)))


def fill_namespaces(text: str, namespaces: Sequence[str]) -> str:
    """`text` with every namespace placeholder replaced by the regex of `namespaces`."""
    return text.replace(NAMESPACES_PLACEHOLDER, namespaces_regex(namespaces))
