"""User text that carries markup, htmx attributes or template syntax renders
inert in Chromium: no script runs, no request fires, the text shows as typed."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from ..conftest import add_patient
from .conftest import sign_in_with_email

pytestmark = pytest.mark.browser

PAYLOADS = [
    '<script>window.__pwned = "script"</script>',
    '<img src=x onerror="window.__pwned = \'img\'">',
    '<a hx-get="/charts/patients?q=pwned" hx-trigger="load">x</a>',
    '<div hx-on:htmx:load="window.__pwned = \'hx-on\'">y</div>',
    "{{ 7*7 }}{% raw %}",
]


def test_chart_text_with_markup_is_inert(app, page, practice, console):
    patient_id = add_patient(app, first_name=PAYLOADS[0][:80], last_name=PAYLOADS[2][:80])
    from pfcore.db import session
    from pfcore_plugins.charts.models import ChartEntry, Encounter

    with app.app_context():
        session().add(ChartEntry(practice_id=practice.id, patient_id=patient_id, kind="medication",
                                 data={"name": PAYLOADS[1], "instructions": PAYLOADS[3], "status": "active"}))
        session().add(Encounter(practice_id=practice.id, patient_id=patient_id, provider_id=practice.admin.id,
                                visit_date=__import__("datetime").date(2026, 11, 20), reason=PAYLOADS[4],
                                subjective="\n".join(PAYLOADS)))
        session().commit()
        encounter_id = session().query(Encounter.id).scalar()
    fired = []
    page.on("request", lambda request: fired.append(request.url) if "pwned" in request.url or request.url.endswith("/x") else None)
    sign_in_with_email(page, practice.admin)
    for path in ("/charts/patients", f"/charts/patients/{patient_id}",
                 f"/charts/patients/{patient_id}/encounters/{encounter_id}", f"/reports/audit?patient={patient_id}"):
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


@pytest.mark.parametrize("next_path", ["//evil.example.com/x", "https://evil.example.com/", "/\\evil.example.com",
                                       "javascript:alert(1)"])
def test_sign_in_never_leads_off_site(app, page, practice, next_path):
    page.goto(f"/login-email/?next={next_path}")
    page.get_by_label("Email").fill(practice.admin.email)
    page.get_by_label("Password").fill(practice.admin.password)
    page.get_by_role("button", name="Log in").click()
    from .conftest import pass_second_factor

    pass_second_factor(page)
    page.wait_for_load_state("networkidle")
    assert page.url.startswith("http://127.0.0.1:") or page.url.startswith("http://localhost:"), page.url
