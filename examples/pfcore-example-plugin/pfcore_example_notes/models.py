"""The plugin's one table: each time someone followed up an invitation."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from pfcore.api import Base, UTCDateTime, utcnow


class FollowUp(Base):
    """Someone (``by_id``) followed up the invitation of ``user_id`` (an invited user) at ``followed_up_at``."""

    __tablename__ = "example_notes_follow_ups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    followed_up_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
