"""Emergency access: who may activate it, and every activation (the history)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pfcore.api import Base, UTCDateTime, utcnow


class Designee(Base):
    """A user an administrator allowed to activate emergency access ("Allow emergency access")."""

    __tablename__ = "emergency_access_designees"
    __table_args__ = (UniqueConstraint("user_id", name="uq_emergency_access_designees_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Activation(Base):
    """One use of emergency access: open while ``ended_at`` is empty and ``expires_at`` is ahead."""

    __tablename__ = "emergency_access_activations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    activated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The first sign-in (with a second factor) after activating: elevation starts here.
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # "user", "administrator", "expired", "permission_removed", "user_deactivated"
    ended_how: Mapped[str] = mapped_column(String(32), default="")
