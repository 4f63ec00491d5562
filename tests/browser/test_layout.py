"""Layout: the pages fit from a phone to 1024x768 without sideways scrolling.
Screenshots go to test-artifacts/ for a person to look at."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from ..support.browser import ARTIFACTS, make_active_user, sign_in_with_email

pytestmark = pytest.mark.browser

SIZES = {"desktop-1024x768": (1024, 768), "phone-390x844": (390, 844)}


def horizontal_overflow(page) -> int:
    """How many CSS pixels the document is wider than the viewport (0: none)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


@pytest.mark.parametrize("size", list(SIZES))
def test_users_page_fits_the_screen(app, practice, new_page, size):
    make_active_user(app, practice)
    make_active_user(
        app,
        practice,
        "Bartholomew",
        "Featherstonehaugh-Worthington",
        "bartholomew.featherstonehaugh-worthington@sunrise-family-clinic.example.com",
        access_level=4,
        is_admin=True,
    )
    width, height = SIZES[size]
    page = new_page(width, height)
    sign_in_with_email(page, practice.admin)

    page.goto("/settings/users")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    expect(page.get_by_role("row")).to_have_count(4)  # header + three users
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"users-{size}.png"), full_page=True)
    assert horizontal_overflow(page) <= 0
    # The main actions are on screen without scrolling sideways.
    for control in (page.get_by_role("link", name="Add user"), page.get_by_role("button", name="Log out")):
        box = control.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, control

    page.get_by_role("link", name="Ada Lovelace").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
    page.screenshot(path=str(ARTIFACTS / f"user-detail-{size}.png"), full_page=True)
    assert horizontal_overflow(page) <= 0

    page.goto("/reports/audit")
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / f"audit-{size}.png"), full_page=True)
    assert horizontal_overflow(page) <= 0
