"""Structured logs (issue 11 §4): with ``LOG_FORMAT=json`` (production's default) every line
is one JSON object (python-json-logger), and every line carries the ids of what it is part
of, bound for the duration of a web request or a DICOM association: ``request_id`` or
``association_id``, and the ``study_uid`` when known. The audit events of that request or
association carry the same id in their ``detail``, so a line leads to its audit event and
its study, and back. Imports no app: every app logs through it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

# Replaced, never mutated: a new dict per bind, so contexts never share one.
_ids: ContextVar[dict[str, str]] = ContextVar("nexrel_log_ids", default={})  # noqa: B039


def bound_ids() -> dict[str, str]:
    return dict(_ids.get())


def bind(**ids: str) -> None:
    """Add ids to the current context (a thread's: an association runs in its own)."""
    _ids.set({**_ids.get(), **{k: v for k, v in ids.items() if v}})


@contextmanager
def bound(**ids: str) -> Iterator[None]:
    token = _ids.set({**_ids.get(), **{k: v for k, v in ids.items() if v}})
    try:
        yield
    finally:
        _ids.reset(token)


class ContextIds(logging.Filter):
    """Puts the bound ids on each record (attributes the formatters can show)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _ids.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class NexrelJsonFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, process, message, the bound ids and
    any ``extra`` the call gave."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s")
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level"})
        super().__init__(*args, **kwargs)
