"""The users for whom Practice ID sign-in is off (e.g. after "Upgrade to email login")."""
from __future__ import annotations

from pfcore.db import Base
from pfcore.strategy_switches import UserSwitchedOff


class UserOff(UserSwitchedOff, Base):
    __tablename__ = "login_pac_users_off"
