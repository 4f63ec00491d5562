"""CSRF on every state-changing route (ASVS V3.5), and no state change on GET.

Every POST route of the URL map (core and every installed plugin) is sent,
by a signed-in administrator, without a token, with a wrong token and with
another browser's valid token, each as a plain form post and as an htmx
request: each answer is the 400 "Form expired" page and nothing in the
database changes. Then every GET route is called and no table except the
audit trail and the session bookkeeping changes.
"""

from __future__ import annotations

from sqlalchemy import func, select

from pfcore import audit
from pfcore.db import Base, session

from ..support.apps import Browserless, csrf_from
from ..support.records import add_patient

# Changing on GET by design: the audit trail records reads; sessions record
# when they were last seen and the lock screen locks the session.
BOOKKEEPING = {*audit.TABLES, "login_sessions", "pending_sign_ins"}
POST_DATA = {
    "enabled": "1",
    "access_level": "4",
    "admin": "1",
    "email": "csrf@evil.example.com",
    "first_name": "Eve",
    "last_name": "Intruder",
    "name": "Aspirin",
    "quantity": "1",
}


def table_counts(app) -> dict[str, int]:
    with app.app_context():
        return {
            name: session().scalar(select(func.count()).select_from(table))
            for name, table in Base.metadata.tables.items()
        }


def fill(rule, ids: dict) -> str:
    path = rule.rule
    for arg in rule.arguments:
        value = (
            ids.get(arg, "1")
            if arg.endswith("_id")
            else {"slug": "medications", "name": "licensing", "token": "bogus-token"}.get(arg, "x")
        )
        for converter in ("", "int:", "path:", "string:"):
            path = path.replace(f"<{converter}{arg}>", str(value))
    return path


def test_every_post_route_refuses_a_missing_wrong_or_foreign_token(app, admin_web):
    patient_id = add_patient(app)
    stranger = Browserless(app.test_client())
    foreign_token = csrf_from(stranger.get("/signup").get_data(as_text=True))
    own_token = admin_web.token("/dashboard")
    wrong = own_token[:-4] + ("AAAA" if not own_token.endswith("AAAA") else "BBBB")
    before = table_counts(app)
    posts = [r for r in app.url_map.iter_rules() if "POST" in r.methods]
    tried = 0
    for rule in posts:
        path = fill(rule, {"patient_id": patient_id})
        for token in (None, wrong, foreign_token):
            for htmx in (False, True):
                headers = {"HX-Request": "true", "HX-Request-Type": "partial"} if htmx else {}
                data = dict(POST_DATA)
                if token is not None:
                    if htmx:
                        headers["X-CSRFToken"] = token
                    else:
                        data["csrf_token"] = token
                response = admin_web.client.post(path, data=data, headers=headers)
                assert response.status_code == 400, (rule.endpoint, token, htmx, response.status_code)
                assert "This form expired or did not come from pfcore" in response.get_data(as_text=True)
                tried += 1
    assert table_counts(app) == before
    assert len(posts) >= 60 and tried == len(posts) * 6


def test_no_get_route_changes_state(app, admin_web):
    patient_id = add_patient(app)
    before = {k: v for k, v in table_counts(app).items() if k not in BOOKKEEPING}
    gets = [
        r
        for r in app.url_map.iter_rules()
        if "GET" in r.methods and r.endpoint not in ("core.lock_screen", "static", "core.plugin_static")
    ]
    for rule in gets:
        response = admin_web.get(fill(rule, {"patient_id": patient_id}))
        assert response.status_code < 500, (rule.endpoint, response.status_code)
    after = {k: v for k, v in table_counts(app).items() if k not in BOOKKEEPING}
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert changed == {}
