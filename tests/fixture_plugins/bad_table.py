"""Breaks the contract: its table is not named ``bad_table_...``.

Imported only in a subprocess (tests/test_plugin_contract.py): mapping a
class adds its table to the shared ``Base.metadata`` for the whole process.
"""

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pfcore.contrib import PluginInfo
from pfcore.db import Base

PLUGIN = PluginInfo(name="bad_table", title="Bad table")


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(200))
