"""Where the tooling finds the program, the stack files and the reference data.

One place, so that moving a module inside `infra/tooling/` cannot silently point a
`Path(__file__).parents[n]` at the wrong folder.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROGRAM = PROJECT_ROOT / "infra" / "__main__.py"
"""The Pulumi program (`Pulumi.yaml`'s `main: infra/`)."""
STACKS_DIR = PROJECT_ROOT / "stacks"
"""`Pulumi.yaml`'s `stackConfigDir`."""
REFERENCE_DIR = PROJECT_ROOT / "infra" / "k8s-reference"
"""Vendored CRD schemas, chart defaults and API schemas the plans are checked against."""
