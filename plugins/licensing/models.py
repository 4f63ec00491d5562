"""Licensing tables: one row per license slot, the purchase orders, and the
per-user credentials (NPI, DEA, identity verification) that e-prescribing needs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pfcore.api import Base, UTCDateTime, utcnow

# The indexes of the license search on the core users table exist on one database each
# (the trigram index on PostgreSQL, migration licensing_0002; the names and emails on
# SQLite, licensing_0003): no model describes them.
Base.metadata.info.setdefault("indexes_outside_models", set()).update({"ix_users_search_trgm", "ix_users_search_cover"})

CLINICIAN = "clinician"
SECONDARY = "secondary"
TYPE_LABELS = {CLINICIAN: "Clinician License", SECONDARY: "Secondary License"}


class LicenseSlot(Base):
    """A purchased license; ``user_id`` is the EHR user it is assigned to (None: free).

    A user holds at most one license: ``user_id`` is unique (NULLs, the free
    slots, are distinct on SQLite and PostgreSQL alike).
    """

    __tablename__ = "licensing_slots"
    __table_args__ = (UniqueConstraint("user_id", name="uq_licensing_slots_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    license_type: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("licensing_orders.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LicenseOrder(Base):
    """A purchase of Clinician licenses (the trial's starting license is an order too)."""

    __tablename__ = "licensing_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    quantity: Mapped[int] = mapped_column(Integer)
    # "trial", "recorded" (no payment taken), "paid"
    status: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(200), default="")
    renews_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LicenseProfile(Base):
    """Credentials of a user that e-prescribing needs; edited by an administrator."""

    __tablename__ = "licensing_profiles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    npi: Mapped[str] = mapped_column(String(10), default="")
    dea: Mapped[str] = mapped_column(String(9), default="")
    identity_verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    identity_verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
