"""User text that carries markup, htmx attributes or template syntax renders
inert in Chromium: no script runs, no request fires, the text shows as typed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from ..support.browser import make_active_user, sign_in_with_email
from ..support.portal import invite
from ..support.records import add_patient

pytestmark = pytest.mark.browser

PAYLOADS = [
    '<script>window.__pwned = "script"</script>',
    "<img src=x onerror=\"window.__pwned = 'img'\">",
    '<a hx-get="/charts/patients?q=pwned" hx-trigger="load">x</a>',
    "<div hx-on:htmx:load=\"window.__pwned = 'hx-on'\">y</div>",
    "{{ 7*7 }}{% raw %}",
]


def test_chart_text_with_markup_is_inert(app, page, practice, console):
    patient_id = add_patient(app, first_name=PAYLOADS[0][:80], last_name=PAYLOADS[2][:80])
    from pfcore.db import session
    from pfcore_plugins.charts.models import ChartEntry, Encounter

    with app.app_context():
        session().add(
            ChartEntry(
                practice_id=practice.id,
                patient_id=patient_id,
                kind="medication",
                data={"name": PAYLOADS[1], "instructions": PAYLOADS[3], "status": "active"},
            )
        )
        session().add(
            Encounter(
                practice_id=practice.id,
                patient_id=patient_id,
                provider_id=practice.admin.id,
                visit_date=__import__("datetime").date(2026, 11, 20),
                reason=PAYLOADS[4],
                subjective="\n".join(PAYLOADS),
            )
        )
        session().commit()
        encounter_id = session().query(Encounter.id).scalar()
    fired = []
    page.on(
        "request",
        lambda request: fired.append(request.url) if "pwned" in request.url or request.url.endswith("/x") else None,
    )
    sign_in_with_email(page, practice.admin)
    for path in (
        "/charts/patients",
        f"/charts/patients/{patient_id}",
        f"/charts/patients/{patient_id}/encounters/{encounter_id}",
        f"/reports/audit?patient={patient_id}",
    ):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__pwned === undefined"), path
    page.goto(f"/charts/patients/{patient_id}")
    expect(page.locator("#section-medications")).to_contain_text(PAYLOADS[1])
    expect(page.locator("#patient-name")).to_contain_text("<a hx-get=")
    page.goto(f"/charts/patients/{patient_id}/encounters/{encounter_id}")
    expect(page.get_by_text("{{ 7*7 }}{% raw %}").first).to_be_visible()
    assert fired == []
    assert console.unexpected() == []


def _watch_requests(page) -> list[str]:
    """Requests a payload would fire (its hx-get, its img src)."""
    fired = []
    page.on(
        "request",
        lambda request: fired.append(request.url) if "pwned" in request.url or request.url.endswith("/x") else None,
    )
    return fired


def _visit_inert(page, paths) -> None:
    for path in paths:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__pwned === undefined"), path


def test_staff_practice_and_license_text_with_markup_is_inert(app, page, practice, console):
    """Payloads in a user's names (users list and page, Licenses, audit report, the
    emergency-access settings) and in the practice's name (every page's header)."""
    from pfcore.db import session
    from pfcore.models import Practice, User
    from pfcore_plugins.licensing import licenses as licensing

    person = make_active_user(
        app, practice, first_name=PAYLOADS[0][:100], last_name=PAYLOADS[2][:100], email="ada@sunrise.example.com"
    )
    with app.app_context():
        the_practice = session().get(Practice, practice.id)
        admin = session().get(User, practice.admin.id)
        licensing.ensure_slots(the_practice, admin)
        slot = next(slot for slot in licensing.slots_of(practice.id) if slot.user_id is None)
        licensing.assign(the_practice, slot.id, person.id, admin)
        the_practice.name = PAYLOADS[3]
        session().commit()
    fired = _watch_requests(page)
    sign_in_with_email(page, practice.admin)
    _visit_inert(
        page,
        ("/dashboard", "/settings/users", f"/settings/users/{person.id}", "/licensing/", "/reports/audit", "/settings"),
    )
    page.goto("/settings/users")
    expect(page.get_by_role("link", name=f"{PAYLOADS[0][:100]} {PAYLOADS[2][:100]}")).to_be_visible()
    page.goto("/licensing/")
    expect(page.locator("table")).to_contain_text(PAYLOADS[0][:100])
    assert fired == []
    assert console.unexpected() == []


def test_portal_pages_render_chart_text_with_markup_inert(app, page, practice, console):
    """A patient whose chart carries payloads (names, a medication) signs in to the
    portal: the record pages show the text as typed and run nothing."""
    from ..support.portal import BIRTH_DATE, PATIENT_PHONE, add_entry
    from .test_portal_patient import register_with_pin

    patient_id = add_patient(
        app,
        first_name=PAYLOADS[1][:80],
        last_name=PAYLOADS[4],
        date_of_birth=BIRTH_DATE,
        email="pat@example.com",
        phone=PATIENT_PHONE,
        practice_id=practice.id,
    )
    add_entry(app, patient_id, "medication", {"name": PAYLOADS[0], "instructions": PAYLOADS[3], "status": "active"})
    token, pin = invite(app, patient_id, practice_id=practice.id)
    fired = _watch_requests(page)
    register_with_pin(page, f"/portal/register/{token}", pin, practice.name)
    assert page.evaluate("window.__pwned === undefined")
    expect(page.get_by_text(PAYLOADS[0]).first).to_be_visible()
    links = [link.get_attribute("href") for link in page.locator("main a[href^='/portal/records/']").all()]
    _visit_inert(page, ["/portal/", "/portal/authenticator"] + [href for href in links if "/file/" not in href])
    record = next(href for href in links if href.endswith("/download"))
    downloaded = page.request.get(record.replace("/download", "/file/html")).text()  # opened later from disk
    assert PAYLOADS[0] not in downloaded and "&lt;script&gt;" in downloaded
    assert fired == []
    assert console.unexpected() == []


@pytest.mark.parametrize(
    "next_path", ["//evil.example.com/x", "https://evil.example.com/", "/\\evil.example.com", "javascript:alert(1)"]
)
def test_sign_in_never_leads_off_site(app, page, practice, next_path):
    page.goto(f"/login-email/?next={next_path}")
    page.get_by_label("Email").fill(practice.admin.email)
    page.get_by_label("Password").fill(practice.admin.password)
    page.get_by_role("button", name="Log in").click()
    from ..support.browser import pass_second_factor

    pass_second_factor(page)
    page.wait_for_load_state("networkidle")
    assert page.url.startswith("http://127.0.0.1:") or page.url.startswith("http://localhost:"), page.url
