"""Every module that defines tables, so Alembic and tests see the whole schema.

A service that adds tables appends its models module here (and a migration).
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData
from sqlmodel import SQLModel

MODEL_MODULES = (
    "apps.shared.models",
    "apps.backend.models",
    "apps.notification.models",
)


def load_metadata() -> MetaData:
    """Import every models module and return the metadata their tables registered in."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return SQLModel.metadata
