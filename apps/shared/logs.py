"""JSON logs through structlog, with the request id bound per request and secrets redacted.

Standard-library records (uvicorn, alembic, ...) go through the same renderer, so a
service writes one JSON object per line whatever produced the message.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from functools import lru_cache
from typing import Any

import structlog
from opentelemetry import trace

# Keys whose values are never written, whatever logged them.
_SECRET_KEY = re.compile(r"(pass(word)?|secret|token|authorization|api[_-]?key|cookie)", re.I)
# user:password@ in connection URLs that end up inside messages.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
REDACTED = "[redacted]"


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: blank out secret-looking keys and URL passwords."""
    for key, value in list(event_dict.items()):
        if _secret_key(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str) and "://" in value:
            event_dict[key] = _URL_PASSWORD.sub(rf"\1{REDACTED}@", value)
    return event_dict


@lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    """Whether a key names a secret; keys are the few names the code logs with, so the
    answer is remembered rather than searched for on every line (ten keys a line)."""
    return _SECRET_KEY.search(key) is not None


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route structlog and stdlib logging to JSON lines on stdout, tagged with `service`."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
        add_trace_ids,
        redact_secrets,
    ]
    structlog.configure(
        processors=[
            # A disabled level (the request line under LOG_LEVEL=WARNING) stops here,
            # before the other processors build a line the handler would drop.
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    # The JSON lines carry no source location: skip the frame walk that looks for the
    # caller on every record (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn installs its own handlers; let its records reach ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # Our middleware logs each request with its id; uvicorn's access line would repeat it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def add_trace_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: `trace_id` and `span_id` of the current span (apps.shared.tracing),
    when a sampled or unsampled trace is under way; nothing otherwise."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", f"{context.trace_id:032x}")
        event_dict.setdefault("span_id", f"{context.span_id:016x}")
    return event_dict


def _add_service(service: str) -> structlog.types.Processor:
    def add(
        _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
