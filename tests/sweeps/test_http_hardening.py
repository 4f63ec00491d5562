"""Headers, cookies, tenancy across every route, operator pages, health."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from pfcore import create_app
from pfcore.db import session
from pfcore.models import User

from ..support.apps import Browserless
from ..support.journeys import SIGNUP, signup


def test_every_page_has_a_strict_content_security_policy(app, admin_web):
    for path in ("/login-email/", "/signup", "/dashboard", "/settings/users", "/reports/audit"):
        response = admin_web.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "object-src 'none'" in csp and "base-uri 'none'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"]


def test_pages_contain_no_inline_scripts_or_cdn_links(app, admin_web):
    for path in ("/login-email/", "/signup", "/dashboard", "/settings/users", "/reports/audit", "/settings"):
        html = admin_web.get(path).get_data(as_text=True)
        scripts = re.findall(r"<script[^>]*>", html)
        assert scripts and all('src="/static/' in s for s in scripts), scripts
        assert "<script>" not in html and "hx-on" not in html
        assert "https://" not in html and "http://cdn" not in html


def test_authenticated_pages_are_not_cached_and_vary_on_htmx(app, admin_web):
    response = admin_web.get("/settings/users")
    assert response.headers["Cache-Control"] == "no-store"
    assert "HX-Request" in response.headers["Vary"]
    assert "no-store" not in admin_web.get("/static/css/pfcore.css").headers.get("Cache-Control", "")


def test_htmx_is_vendored_and_served_locally(app, client):
    response = client.get("/static/js/htmx-4.0.1.min.js")
    assert response.status_code == 200 and b"htmx" in response.data[:5000]


def test_production_cookies_are_secure_with_host_prefix(tmp_path, database_url, smtp):
    app = create_app(
        {
            "env": "production",
            "secret_key": "s" * 64,
            "database_url": database_url,
            "instance_path": str(tmp_path),
            "smtp_port": smtp.port,
        }
    )
    from ..support.apps import csrf_from

    client = app.test_client()
    token = csrf_from(client.get("/signup", base_url="https://pfcore.test").get_data(as_text=True))
    response = client.post(
        "/signup",
        data=dict(SIGNUP, csrf_token=token),
        base_url="https://pfcore.test",
        headers={"Referer": "https://pfcore.test/signup"},
    )
    cookies = response.headers.getlist("Set-Cookie")
    session_cookie = [c for c in cookies if c.startswith("__Host-pfcore_session=")]
    assert session_cookie, cookies
    assert "Secure" in session_cookie[0] and "HttpOnly" in session_cookie[0] and "Path=/" in session_cookie[0]
    assert "Strict-Transport-Security" in response.headers
    # Every cookie pfcore sets, the portal's included (here: cleared after a stale value), is a
    # __Host- cookie: Secure, HttpOnly, SameSite=Lax, Path=/, no Domain; HSTS on every answer.
    client.set_cookie("__Host-pfcore_portal", "stale-portal-token", domain="pfcore.test")
    portal = client.get("/portal/", base_url="https://pfcore.test")
    cookies += portal.headers.getlist("Set-Cookie")
    assert {c.split("=")[0] for c in cookies} >= {"__Host-pfcore_session", "__Host-pfcore_csrf", "__Host-pfcore_portal"}
    for cookie in cookies:
        assert cookie.startswith("__Host-") and "; Secure" in cookie and "; HttpOnly" in cookie, cookie
        assert "; SameSite=Lax" in cookie and "; Path=/" in cookie and "Domain=" not in cookie, cookie
    for path in ("/signin", "/portal/signin", "/dashboard", "/static/css/pfcore.css", "/healthz"):
        answer = client.get(path, base_url="https://pfcore.test")
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=31536000"), path
    app.extensions["pfcore.engine"].dispose()


def test_every_route_with_an_id_answers_404_for_another_practices_object(app, admin_web):
    """Walk the URL map: no route reveals or changes another practice's rows."""
    other = Browserless(app.test_client())
    signup(other, practice_name="Other clinic", email="owner@other.example.com")
    with app.app_context():
        foreign_user = session().scalars(select(User).where(User.email == "owner@other.example.com")).one()
        # Arguments that name something other than a user get the other practice's object of that kind.
        foreign_ids = {}
        try:
            from pfcore_plugins.licensing.models import LicenseSlot
        except ImportError:
            pass
        else:
            foreign_ids["slot_id"] = (
                session()
                .scalars(select(LicenseSlot.id).where(LicenseSlot.practice_id == foreign_user.practice_id))
                .first()
            )
    from ..support.access_rules import ACCESS_RULES
    from ..support.records import add_patient

    foreign_ids["patient_id"] = add_patient(
        app, first_name="Olga", last_name="Other", practice_id=foreign_user.practice_id
    )
    checked = 0
    for rule in app.url_map.iter_rules():
        id_args = [a for a in rule.arguments if a.endswith("_id")]
        if not id_args or ACCESS_RULES.get(rule.endpoint) == "portal":
            continue  # portal pages answer to portal sessions only (tests/test_portal_accounts.py)
        path = rule.rule
        for arg in id_args:
            foreign_id = foreign_ids.get(arg) or foreign_user.id
            path = path.replace(f"<{arg}>", str(foreign_id)).replace(f"<int:{arg}>", str(foreign_id))
        path = path.replace("<slug>", "medications")
        for method in sorted(rule.methods & {"GET", "POST"}):
            if method == "GET":
                response = admin_web.get(path)
            else:
                response = admin_web.htmx_post(path, {"admin": "0", "access_level": "1"}, page="/settings/users")
            assert response.status_code in (403, 404), (method, path, response.status_code)
            checked += 1
    assert checked >= 7
    with app.app_context():
        unchanged = session().get(User, foreign_user.id)
        assert unchanged.status == "active" and unchanged.is_admin and unchanged.access_level == 4


def test_oversized_request_is_refused_cleanly(app, web):
    response = web.client.post("/signup", data={"practice_name": "x" * (3 * 1024 * 1024)})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)


def test_oversized_fields_get_messages(app, web):
    response = web.post("/signup", dict(SIGNUP, practice_name="x" * 201, email="a" * 250 + "@example.com"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Field cannot be longer than 200 characters." in html


def test_healthz_answers_when_the_database_answers(app, client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok", "database": "up"}


def test_outbox_page_is_for_the_operator_in_development_only(app, admin_web, tmp_path, database_url, smtp):
    admin_web.post(
        "/settings/users/new",
        {"first_name": "Ola", "last_name": "Staff", "email": "ola@sunrise.example.com", "access_level": "1"},
    )
    page = app.test_client().get("/operator/outbox", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert page.status_code == 200 and "ola@sunrise.example.com" in page.get_data(as_text=True)
    assert app.test_client().get("/operator/outbox", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 404
    production = create_app(
        {
            "env": "production",
            "secret_key": "p" * 64,
            "database_url": database_url,
            "instance_path": str(tmp_path / "p"),
            "smtp_port": smtp.port,
        }
    )
    assert production.test_client().get("/operator/outbox").status_code == 404
    production.extensions["pfcore.engine"].dispose()


def test_unknown_accounts_cost_one_password_hash_like_known_ones(app, web, monkeypatch):
    """Equal work for unknown and known users: one argon2 verification each."""
    from pfcore.security import passwords

    signup(web)
    web.post("/signout", page="/dashboard")
    calls = []
    real_verify = passwords.HASHER.verify

    class CountingHasher:
        def __getattr__(self, name):
            return getattr(real_hasher, name)

        def verify(self, *args):
            calls.append(1)
            return real_verify(*args)

    real_hasher = passwords.HASHER
    monkeypatch.setattr(passwords, "HASHER", CountingHasher())
    web.post("/login-email/", {"email": "nobody@example.com", "password": "some password here"})
    unknown_calls = len(calls)
    web.post("/login-email/", {"email": SIGNUP["email"], "password": "wrong password here"})
    assert unknown_calls == 1 and len(calls) == 2


@pytest.mark.parametrize("path", ["/", "/signin", "/login-email/", "/login-pac/", "/signup"])
def test_public_pages_answer(app, client, path):
    response = client.get(path, follow_redirects=True)
    assert response.status_code == 200
