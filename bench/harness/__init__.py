"""What every benchmark stands on: the machine line, the database, the servers it starts,
closed-loop timing, CPU meters and statistics. Nothing here knows a scenario."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository root (pyproject.toml, the apps' working directory)."""
