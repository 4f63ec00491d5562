"""The "enter the code we sent you" step, shared by every flow that sends one
(invitation phone, password reset, login email change)."""

from __future__ import annotations

from flask import redirect, request, url_for

from .. import audit
from ..db import session
from ..models import utcnow
from ..security import codes, phone_sends, throttling
from .forms import CodeForm
from .rendering import render

# How a flow's codes meet the account's lock-out (``enter_code(lockout=...)``):
ACCOUNT_LOCK = "account"  # wrong codes count toward it, and a locked account is refused every code
TIMED_LOCK = "timed"  # the same, but only a timed lock refuses: the flow is the way out of the lasting lock
LOCKED_WAIT = "Too many wrong tries. Wait a few minutes and try again."
LOCKED_OUT = "Too many wrong tries: your account is locked. Ask your practice administrator to unlock it."


def _page(challenge, form, *, endpoint: str, token: str, start_over: str | None, status=200, message=None):
    return render(
        "verify_code.html",
        status=status,
        form=form,
        message=message,
        channel=challenge.channel,
        masked=codes.mask(challenge.destination),
        action=url_for(f"{endpoint}_code", token=token),
        resend_action=url_for(f"{endpoint}_resend", token=token),
        start_over=start_over,
    )


def enter_code(
    user, *, purpose: str, endpoint: str, token: str, start_over: str, on_success, lockout: str | None = None
):
    """GET shows the code form; POST checks it and calls ``on_success()`` (which returns the response).

    With ``lockout`` (ACCOUNT_LOCK or TIMED_LOCK) a wrong code counts as a failed
    sign-in does: otherwise the code would be a way to guess around the lock-out.
    """
    challenge = codes.open_challenge(user.id, purpose) if user else None
    if challenge is None:
        session().rollback()
        return redirect(start_over)
    form = CodeForm()
    if request.method == "GET":
        return _page(challenge, form, endpoint=endpoint, token=token, start_over=start_over)
    if form.validate():
        refusal = _lock_refusal(user, lockout, purpose)
        result = codes.CheckResult(False, refusal) if refusal else codes.check(challenge, form.code.data, user)
        if result.ok:
            response = on_success()
            session().commit()
            return response
        if lockout and result.wrong_code:
            throttling.register_failure(user)
        session().commit()
        form.code.errors = [result.message]
    return _page(challenge, form, endpoint=endpoint, token=token, start_over=start_over, status=422)


def _lock_refusal(user, lockout: str | None, purpose: str) -> str | None:
    """The message when the account's lock refuses codes now (audited), else None."""
    if lockout == ACCOUNT_LOCK and user.locked_out:
        message = LOCKED_OUT
    elif lockout and user.locked_until is not None and user.locked_until > utcnow():
        message = LOCKED_WAIT
    else:
        return None
    audit.record(
        "code.failed",
        practice_id=user.practice_id,
        outcome="failure",
        object_type="user",
        object_id=user.id,
        details={"purpose": purpose, "reason": "account locked"},
    )
    return message


def resend_code(user, *, purpose: str, what: str, endpoint: str, token: str, start_over: str):
    challenge = codes.open_challenge(user.id, purpose) if user else None
    if challenge is None:
        session().rollback()
        return redirect(start_over)
    result = codes.resend(challenge, user, what)
    session().commit()
    return _page(
        challenge,
        CodeForm(formdata=None),
        endpoint=endpoint,
        token=token,
        start_over=start_over,
        status=200 if result.ok else 429,
        message=result.message,
    )


def choose_channel(user, *, link, what: str, action: str, code_url: str, intro: str):
    """ "Verify it's you": text or call a code to the user's verified phone, for an emailed ``link``.

    GET shows the choice; POST with ``channel`` sends the code and goes to ``code_url``,
    within the link's and the user's caps on challenges (``codes.start_for_link``).
    """
    error, status = None, 422 if request.method == "POST" else 200
    if request.method == "POST" and request.form.get("channel") in ("sms", "voice"):
        try:
            result = codes.start_for_link(link, user, channel=request.form["channel"], what=what)
        except phone_sends.SendRefused as refused:  # the caps on texts and calls, or the number itself: 422
            phone_sends.record_refusal(refused)
            error = refused.message
        else:
            session().commit()
            if result.ok:
                return redirect(code_url)
            error, status = result.message, 429  # this link's or this user's challenges are used up
    return render(
        "verify_choose.html", action=action, intro=intro, masked=codes.mask(user.phone), error=error, status=status
    )


def has_verified_phone(user) -> bool:
    """A code to the verified phone proves the person holds more than the mailbox."""
    return user.phone is not None and user.phone_verified_at is not None
