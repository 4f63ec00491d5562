"""Online backup of the embedded SQLite database (``pfcore backup PATH``)."""

from __future__ import annotations

import os
import sqlite3

from sqlalchemy.engine import make_url


def backup_sqlite(database_url: str, target: str) -> int:
    """Copy the live database to ``target`` with SQLite's backup API; returns pages copied.

    The copy is a consistent snapshot even while other connections write: the
    backup restarts itself when the source changes under it. The file is
    written beside the target and renamed, so a failed backup leaves no half file.
    """
    source_path = make_url(database_url).database
    partial = f"{target}.partial"
    if os.path.exists(partial):
        os.remove(partial)
    source = sqlite3.connect(source_path, timeout=30)
    destination = sqlite3.connect(partial)
    try:
        source.backup(destination, pages=1024)
        pages = destination.execute("PRAGMA page_count").fetchone()[0]
        destination.execute("PRAGMA journal_mode=DELETE")
    finally:
        destination.close()
        source.close()
    os.replace(partial, target)
    return pages
