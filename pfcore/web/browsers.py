"""My account > Signed-in browsers: the user's open sessions, each of which
they can end (a lost phone, a shared computer left signed in)."""

from __future__ import annotations

from flask import abort, g, url_for
from flask_login import login_required
from markupsafe import Markup

from .. import audit
from ..contrib import Section
from ..db import find_in_practice, session
from ..models import LoginSession, utcnow
from ..security.sessions import end_other_sessions, end_session, open_sessions
from .blueprint import core
from .rendering import render

ENDED_BY_USER = "ended_by_user"

# First match wins: Edge and Opera also say Chrome, Chrome also says Safari,
# iPhones also say Mac OS X and Android also says Linux.
BROWSERS = (
    ("Edg", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
SYSTEMS = (
    ("Windows", "Windows"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


def describe_browser(user_agent: str) -> str:
    """ "Firefox on Windows", read simply from the User-Agent; no database of agents."""
    browser = next((name for token, name in BROWSERS if token in user_agent), "Unknown browser")
    system = next((name for token, name in SYSTEMS if token in user_agent), None)
    return f"{browser} on {system}" if system else browser


def _page(*, status: int = 200, message: str | None = None):
    return render(
        "account/browsers.html",
        block="browser_list",
        status=status,
        message=message,
        sessions=open_sessions(g.pfcore_user),
        current=g.pfcore_login_session,
        describe_browser=describe_browser,
    )


@core.get("/account/browsers")
@login_required
def signed_in_browsers():
    return _page()


@core.post("/account/browsers/<browser_id>/end")
@login_required
def end_browser(browser_id):
    """End one other session of the signed-in user (404 for anyone else's)."""
    target = _own_other_session(browser_id)
    end_session(target, ENDED_BY_USER)
    audit.record(
        "session.ended_by_user",
        practice_id=target.practice_id,
        object_type="login_session",
        object_id=target.id,
        details={"browser": describe_browser(target.user_agent)},
    )
    session().commit()
    return _page(message=f"{describe_browser(target.user_agent)} was signed out.")


@core.post("/account/browsers/end-others")
@login_required
def end_other_browsers():
    user = g.pfcore_user
    ended = end_other_sessions(user, g.pfcore_login_session, ENDED_BY_USER)
    audit.record(
        "session.ended_by_user",
        practice_id=user.practice_id,
        object_type="user",
        object_id=user.id,
        details={"other_sessions_ended": ended},
    )
    session().commit()
    return _page(message="Every other browser was signed out." if ended else "No other browser was signed in.")


def _own_other_session(browser_id) -> LoginSession:
    target = find_in_practice(
        LoginSession,
        browser_id,
        g.pfcore_user.practice_id,
        LoginSession.user_id == g.pfcore_user.id,
        LoginSession.ended_at.is_(None),
        LoginSession.expires_at > utcnow(),
    )
    if target is None or target.id == g.pfcore_login_session.id:
        abort(404)
    return target


def browsers_section() -> Section:
    """The My account section that leads here."""
    count = len(open_sessions(g.pfcore_user))
    html = Markup('<p>You are signed in on {} browser{}. <a href="{}">See and end signed-in browsers</a></p>').format(
        count, "" if count == 1 else "s", url_for("core.signed_in_browsers")
    )
    return Section("Signed-in browsers", html, order=20)
