"""A plugin with a table and its own labelled Alembic branch.

Imported only in a subprocess (tests/test_plugin_contract.py), like
``bad_table``: its mapped class joins the shared ``Base.metadata``.
"""

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pfcore.contrib import PluginInfo
from pfcore.db import Base

PLUGIN = PluginInfo(name="with_migrations", title="With migrations")


class Rule(Base):
    __tablename__ = "with_migrations_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    text: Mapped[str] = mapped_column(String(320))
