"""The folded name keys compared byte by byte on every database.

``normalise_name`` folds accents and case in Python, so "Côté" and "COTE" are one key. What
the database then does with the key must not depend on its locale: the searches narrow on
an index range (``key >= 'cote' AND key < 'cotf'``), the C-FIND matcher on a prefix, and the
lists are in folded-name order. SQLite compares text byte by byte (BINARY); PostgreSQL uses
the database's collation, e.g. en_US.UTF-8 on a Debian cluster, which skips spaces at first
("cot ezra" sorts as "cotezra", inside the range of "cote"). The key columns are therefore
COLLATE "C" on PostgreSQL: the same order and the same ranges as SQLite, and a btree index
that also serves LIKE 'prefix%'. A migration's ``AlterField`` of one of these columns resets
its collation: run ``bytewise_columns`` again after it.
"""

from __future__ import annotations

from django.db import migrations


def bytewise_columns(table: str, columns: dict[str, int]) -> migrations.RunPython:
    """A migration step: ``columns`` (name: max_length) of ``table`` COLLATE "C" on
    PostgreSQL (their indexes are rebuilt); nothing elsewhere."""

    def alter(collation: str):
        def run(apps, schema_editor) -> None:
            if schema_editor.connection.vendor != "postgresql":
                return
            quote = schema_editor.quote_name
            for column, max_length in columns.items():
                schema_editor.execute(
                    f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} "
                    f'TYPE varchar({max_length}) COLLATE "{collation}"'
                )

        return run

    return migrations.RunPython(alter("C"), alter("default"), elidable=False)
