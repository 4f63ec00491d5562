"""The users for whom Practice ID sign-in is off (e.g. after "Upgrade to email login")."""

from __future__ import annotations

from pfcore.api import Base, UserSwitchedOff


class UserOff(UserSwitchedOff, Base):
    __tablename__ = "login_pac_users_off"
