"""JSON logs through structlog, with the request id bound per request and secrets redacted.

Standard-library records (uvicorn, alembic, ...) go through the same renderer, so a
service writes one JSON object per line whatever produced the message.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
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


class JsonLineLogger:
    """structlog's final logger: writes each rendered line to the current `sys.stdout`
    and flushes it, as the stdlib `StreamHandler` does, under one lock per process
    (shared with nothing else: the stdlib handler's lines are whole writes too).

    structlog's own events take this path rather than the stdlib's (a `LogRecord`, the
    handler and the `ProcessorFormatter` around the same processors): the same JSON
    line for about a third of the CPU time, which mattered on the request path (one
    request line per request)."""

    _lock = threading.Lock()

    def __init__(self, name: str) -> None:
        self.name = name  # read by structlog.stdlib.add_logger_name
        self.stdlib = logging.getLogger(name)  # whose level decides (`filter_by_level`)

    def msg(self, message: str) -> None:
        with self._lock:
            stream = sys.stdout
            stream.write(message + "\n")
            stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _json_line_logger(*args: Any) -> JsonLineLogger:
    return JsonLineLogger(str(args[0]) if args else "")


_LEVEL_NUMBERS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


def filter_by_level(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: drop events below the level of the stdlib logger of the same
    name (its root's, LOG_LEVEL), read on every event like structlog.stdlib's
    `filter_by_level`, so a later `configure_logging` (or a test) can change it."""
    if not logger.stdlib.isEnabledFor(_LEVEL_NUMBERS.get(method, logging.NOTSET)):
        raise structlog.DropEvent
    return event_dict


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
            # before the other processors build a line nobody would see.
            filter_by_level,
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=_json_line_logger,
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
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


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
