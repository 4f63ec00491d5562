"""The CSRF seed and several tabs of one browser around a sign-in.

Flask-WTF keeps the seed in the Flask session, a signed cookie; every form
token of the browser is made from it, and a request that finds no seed
starts one. Signing in starts a new seed (tests/test_sessions.py: a token
from before the sign-in is refused after it), and the sign-in's own answer
carries it: two tabs that load pages at the same moment right after a
sign-in send that seed and start none, so neither tab's forms are refused
because the other tab's answer came later.
"""

from __future__ import annotations

from itsdangerous import URLSafeTimedSerializer

from .support.apps import Browserless
from .support.journeys import SIGNUP, sign_in_email, signup
from .support.records import audit_rows

CSRF_COOKIE = "pfcore_csrf"


def other_tab(app, cookies: dict[str, str]) -> Browserless:
    """A tab whose request leaves with ``cookies`` (a jar of its own, as requests in flight at once)."""
    tab = Browserless(app.test_client())
    for name, value in cookies.items():
        tab.client.set_cookie(name, value)
    return tab


def cookies_of(browser: Browserless) -> dict[str, str]:
    return {
        name: cookie.value
        for name in (CSRF_COOKIE, "pfcore_session")
        if (cookie := browser.client.get_cookie(name)) is not None
    }


def seed_of(app, token: str) -> str:
    """The seed a CSRF token was made from."""
    return URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").loads(token)


def test_two_tabs_loading_pages_at_once_right_after_sign_in_keep_working_forms(app, web):
    signup(web)
    before = web.token("/dashboard")
    web.post("/signout", page="/dashboard")
    answer = sign_in_email(web, SIGNUP["email"], SIGNUP["password"])
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/dashboard")
    assert web.client.get_cookie(CSRF_COOKIE) is not None  # the sign-in's answer brought the new seed

    # Two tabs load a page at the same moment: both requests leave with the cookies the
    # sign-in left; the browser keeps whatever the later answer sets.
    sent = cookies_of(web)
    first = other_tab(app, sent).token("/settings/users/new")
    later_tab = other_tab(app, sent)
    later = later_tab.token("/dashboard")
    assert seed_of(app, first) == seed_of(app, later) != seed_of(app, before)
    browser = other_tab(app, cookies_of(later_tab))  # the jar once both answers are in

    # The tab answered first submits its form, then the other tab: both accepted.
    added = browser.client.post(
        "/settings/users/new",
        data={
            "first_name": "Ada",
            "last_name": "Tab",
            "email": "ada@sunrise.example.com",
            "access_level": "1",
            "csrf_token": first,
        },
    )
    assert added.status_code == 302 and "/settings/users/" in added.headers["Location"], added.status_code
    signed_out = browser.client.post("/signout", data={"csrf_token": later})
    assert signed_out.status_code == 302 and signed_out.headers["Location"].endswith("/signin")


def test_a_sign_in_form_from_a_tab_loaded_before_the_sign_in_says_form_expired_with_a_way_on(app, web):
    """Expected: the second tab's form belongs to the session before the sign-in."""
    signup(web)
    web.post("/signout", page="/dashboard")
    stale = web.token("/login-email/")  # the second tab shows the sign-in page, loaded before
    sign_in_email(web, SIGNUP["email"], SIGNUP["password"])  # in the first tab
    signed_in = len(audit_rows(app, "signin.success"))

    answer = web.client.post(
        "/login-email/", data={"email": SIGNUP["email"], "password": SIGNUP["password"], "csrf_token": stale}
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "Form expired" in page and "Reload the page and try again." in page
    assert len(audit_rows(app, "signin.success")) == signed_in, "nothing happened"
    # The way on: the start page leads to the dashboard of the session the first tab opened.
    assert 'href="/">Go to the start page</a>' in page
    assert web.get("/").headers["Location"].endswith("/dashboard")
    assert web.post("/signout", page="/dashboard").headers["Location"].endswith("/signin")


def test_two_tabs_of_a_new_browser_each_start_a_seed_and_the_first_answered_is_refused_once(app, web):
    """Before any seed exists (a new browser, none of pfcore's cookies yet) two pages loaded
    at the same moment each start one, and the later answer's cookie wins: the other tab's
    sign-in form is refused once, with the way on, and works after a reload. Only forms
    shown before a sign-in can meet this: the sign-in starts the seed of every later page."""
    signup(Browserless(app.test_client()))
    first_tab, later_tab = other_tab(app, {}), other_tab(app, {})
    first, later = first_tab.token("/login-email/"), later_tab.token("/login-email/")
    browser = other_tab(app, cookies_of(later_tab))
    details = {"email": SIGNUP["email"], "password": SIGNUP["password"]}
    refused = browser.client.post("/login-email/", data=dict(details, csrf_token=first))
    assert refused.status_code == 400 and "Form expired" in refused.get_data(as_text=True)
    assert browser.get("/").headers["Location"].endswith("/signin")  # the way on: a fresh form
    fresh = browser.token("/login-email/")
    assert seed_of(app, fresh) == seed_of(app, later)  # the seed of the answer that came last
    answer = browser.client.post("/login-email/", data=dict(details, csrf_token=fresh))
    assert answer.status_code == 302 and answer.headers["Location"].endswith(("/signin/verify", "/signin/enroll"))
