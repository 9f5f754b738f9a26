"""One INSERT statement per hot table, built once from its model (issue 12).

On a CBCT slice, the ORM's ``create`` of the instance row (in its savepoint) and of its
django-q2 task took a fifth of the listener's time for the slice, the commit not counted:
``save()``'s machinery and the INSERT's compilation, every time (docs/benchmarks.md). ``insert_row``
builds the statement once per model and database from the model's own fields (their
columns, defaults and conversions for the database, as ``save()`` uses them) and runs it
with the cursor. ``ON CONFLICT DO NOTHING`` lets a unique constraint answer "already
there" without an error, so no savepoint is needed (PostgreSQL and SQLite 3.35+).

Unlike ``save()``, no ``pre_save``/``post_save`` signal is sent: nothing listens to the
models written here (``tests`` check it, so a new receiver is noticed).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import NOT_PROVIDED, Field, Model
from django.utils import timezone


@dataclass(frozen=True)
class PreparedInsert:
    fields: tuple[Field, ...]  # every concrete column but the primary key, in SQL order
    attnames: frozenset[str]
    sql: str


@functools.cache
def prepared_insert(model: type[Model], using: str) -> PreparedInsert:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING pk`` for ``model`` on database ``using``."""
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = model._meta
    fields = tuple(f for f in meta.concrete_fields if not f.primary_key)
    pk = meta.pk
    assert pk is not None and pk.column is not None, f"{meta.label} has a primary key column"
    for field in fields:
        if field.db_default is not NOT_PROVIDED:
            # The database would compute it; every column here gets its value from Python.
            raise ValueError(f"{meta.label}.{field.name} has a db_default: not supported here")
    columns = ", ".join(quote(str(f.column)) for f in fields)  # concrete: never None
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT DO NOTHING RETURNING {quote(pk.column)}"
    )
    return PreparedInsert(fields, frozenset(f.attname for f in fields), sql)


def insert_values(
    model: type[Model], values: dict[str, Any], *, using: str = DEFAULT_DB_ALIAS
) -> tuple[int, dict[str, Any]] | None:
    """Insert one ``model`` row: ``values`` by attribute name (``practice_id``, not
    ``practice``), the fields' defaults for the rest, ``auto_now``/``auto_now_add`` fields
    set to now. Returns the new primary key and every column's value, or ``None`` if a
    unique constraint already holds such a row (nothing is written, and the transaction
    stays usable)."""
    prepared = prepared_insert(model, using)
    unknown = values.keys() - prepared.attnames
    if unknown:
        raise TypeError(f"{model._meta.label} has no column for {sorted(unknown)}")
    connection = connections[using]
    now = None
    row: dict[str, Any] = {}
    params: list[Any] = []
    for field in prepared.fields:
        name = field.attname
        if name in values:
            value = values[name]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now = now or timezone.now()
        else:
            value = field.get_default()
        row[name] = value
        params.append(field.get_db_prep_save(value, connection=connection))
    with connection.cursor() as cursor:
        cursor.execute(prepared.sql, params)
        returned = cursor.fetchone()
    return None if returned is None else (returned[0], row)


def insert_row[M: Model](
    model: type[M], values: dict[str, Any], *, using: str = DEFAULT_DB_ALIAS
) -> M | None:
    """``insert_values``, as the saved instance (what ``create()`` returns), or ``None``."""
    inserted = insert_values(model, values, using=using)
    if inserted is None:
        return None
    pk, row = inserted
    instance = model(**row)
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = using
    return instance
