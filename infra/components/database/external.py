"""external mode: a server the program does not manage, its URL from `todo:databaseUrl`."""

from __future__ import annotations

import pulumi

from infra.components.database.args import DatabaseArgs, Source
from infra.settings import ExternalDatabase


def use_external(args: DatabaseArgs, settings: ExternalDatabase) -> Source:
    """The configured URL, kept secret; nothing to create."""
    if args.external_url is None:
        raise ValueError("database mode external needs external_url")
    return Source(url=pulumi.Output.secret(args.external_url), ports=(settings.port,))
