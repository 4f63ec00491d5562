"""Limits on texts and calls in Chromium: past a cap the person reads why no
code came and what to do, on the page they are on (review #23, finding 4)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .test_mfa import PHONE, log_in, pat  # noqa: F401  (pat: a staff member with a verified phone, a fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings):
    # One code an hour to a number, and no wait between codes, to reach the cap in two clicks.
    return dict(settings, phone_sends_per_number_hour=1, code_resend_seconds=0)


def test_a_second_code_past_the_numbers_cap_says_to_wait_or_use_another_way(page, pat, texts, console):
    console.allow_status(422)  # the refused second code
    log_in(page, pat)
    page.get_by_role("link", name="Text me a code").click()
    page.get_by_role("button", name="Text me").click()
    expect(page.get_by_label("Security code")).to_be_visible()
    page.get_by_role("button", name="Send a new code").click()
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(
            r"That phone number has received many codes in the last hour\. Wait an hour, or use another way to verify\."
        )
    )
    expect(page.get_by_role("link", name="Use another way")).to_be_visible()
    assert len([m for m in texts.messages if m["to"] == PHONE]) == 1


def test_a_premium_number_is_refused_when_typed(page, app, practice, texts, console):
    """The practice's first administrator verifies a phone at sign-in."""
    console.allow_status(422)  # the refused number
    log_in(page, practice.admin)
    page.get_by_role("link", name="Verify a phone for codes by text or call").click()
    page.get_by_label("Mobile phone").fill("1-900-555-0100")
    page.get_by_role("button", name="Text me").click()
    phone = page.get_by_label("Mobile phone")
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(
        page.get_by_text("That is a premium-rate number: pfcore sends codes only to mobile phones and landlines.")
    ).to_be_visible()
    expect(page.get_by_text("landlines in the United States or Canada")).to_be_visible()
    assert texts.messages == []
