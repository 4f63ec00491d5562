"""Keeps the contract: its table is named ``good_table_notes``.

Imported only in a subprocess, like ``bad_table``.
"""

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pfcore.contrib import PluginInfo
from pfcore.db import Base

PLUGIN = PluginInfo(name="good_table", title="Good table")


class Note(Base):
    __tablename__ = "good_table_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(200))
