"""The users for whom email sign-in is off (e.g. after "Upgrade to email login")."""

from __future__ import annotations

from pfcore.api import Base, UserSwitchedOff


class UserOff(UserSwitchedOff, Base):
    __tablename__ = "login_email_users_off"
