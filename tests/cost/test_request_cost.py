"""What every signed-in request costs before it draws anything (docs/performance.md, P2).

Each request needs its session, the user, the practice and the plugins the
practice switched on (which hooks answer, which plugin pages exist): they are
read in one statement. Pinned so that a second round trip per request cannot
quietly come back. Runs on SQLite and on PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

from sqlalchemy import delete, select

from pfcore.db import session
from pfcore.models import Practice, PracticePlugin

from ..support.database import recorded_sql


def _statements(sent: list[str]) -> list[str]:
    return [" ".join(s.split()).lower() for s in sent if not s.lstrip().upper().startswith("BEGIN")]


def test_a_signed_in_request_reads_session_user_practice_and_plugins_at_once(app, admin_web):
    admin_web.get("/session/alive")  # the session was just touched: no write follows
    with recorded_sql(app) as sent:
        assert admin_web.get("/session/alive", headers={"HX-Request": "true"}).status_code == 204
    statements = _statements(sent)
    assert len(statements) == 1, "\n".join(statements)
    assert "from login_sessions" in statements[0] and "practice_plugins" in statements[0]


def test_a_plugin_page_asks_nothing_more_about_the_practice_plugins(app, admin_web):
    with recorded_sql(app) as sent:
        assert admin_web.get("/licensing/").status_code == 200
    asked = [s for s in _statements(sent) if "practice_plugins" in s]
    assert len(asked) == 1 and "from login_sessions" in asked[0], "\n".join(asked)


def test_a_plugin_switched_off_meanwhile_is_off_for_the_next_request(app, admin_web):
    assert admin_web.get("/licensing/").status_code == 200
    assert "Licenses" in admin_web.get("/dashboard").get_data(as_text=True)
    with app.app_context():
        practice_id = session().scalars(select(Practice.id)).one()
        session().execute(
            delete(PracticePlugin).where(
                PracticePlugin.practice_id == practice_id, PracticePlugin.plugin_name == "licensing"
            )
        )
        session().commit()
    assert admin_web.get("/licensing/").status_code == 404
    assert "Licenses" not in admin_web.get("/dashboard").get_data(as_text=True)


def test_a_practice_with_no_plugin_on_is_served(app, admin_web):
    with app.app_context():
        session().execute(delete(PracticePlugin))
        session().commit()
    assert admin_web.get("/session/alive", headers={"HX-Request": "true"}).status_code == 204
    assert admin_web.get("/settings/users").status_code == 200
    assert admin_web.get("/licensing/").status_code == 404
