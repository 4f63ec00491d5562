"""The "enter the code we sent you" step, shared by every flow that sends one
(invitation phone, password reset, login email change)."""
from __future__ import annotations

from flask import redirect, request, url_for

from ..db import session
from ..security import codes, phone_sends
from .forms import CodeForm
from .rendering import render


def _page(challenge, form, *, endpoint: str, token: str, start_over: str | None, status=200, message=None):
    return render("verify_code.html", status=status, form=form, message=message, channel=challenge.channel,
                  masked=codes.mask(challenge.destination),
                  action=url_for(f"{endpoint}_code", token=token),
                  resend_action=url_for(f"{endpoint}_resend", token=token), start_over=start_over)


def enter_code(user, *, purpose: str, endpoint: str, token: str, start_over: str, on_success):
    """GET shows the code form; POST checks it and calls ``on_success()`` (which returns the response)."""
    challenge = codes.open_challenge(user.id, purpose) if user else None
    if challenge is None:
        session().rollback()
        return redirect(start_over)
    form = CodeForm()
    if request.method == "GET":
        return _page(challenge, form, endpoint=endpoint, token=token, start_over=start_over)
    if form.validate():
        result = codes.check(challenge, form.code.data, user)
        if result.ok:
            response = on_success()
            session().commit()
            return response
        session().commit()
        form.code.errors = [result.message]
    return _page(challenge, form, endpoint=endpoint, token=token, start_over=start_over, status=422)


def resend_code(user, *, purpose: str, what: str, endpoint: str, token: str, start_over: str):
    challenge = codes.open_challenge(user.id, purpose) if user else None
    if challenge is None:
        session().rollback()
        return redirect(start_over)
    result = codes.resend(challenge, user, what)
    session().commit()
    return _page(challenge, CodeForm(formdata=None), endpoint=endpoint, token=token, start_over=start_over,
                 status=200 if result.ok else 429, message=result.message)


def choose_channel(user, *, purpose: str, what: str, action: str, code_url: str, intro: str):
    """"Verify it's you": text or call a code to the user's verified phone.

    GET shows the choice; POST with ``channel`` sends the code and goes to ``code_url``.
    """
    message = None
    if request.method == "POST" and request.form.get("channel") in ("sms", "voice"):
        try:
            codes.start(user, purpose=purpose, channel=request.form["channel"], destination=user.phone, what=what)
        except phone_sends.SendRefused as refused:
            phone_sends.record_refusal(refused)
            message = refused.message
        else:
            session().commit()
            return redirect(code_url)
    return render("verify_choose.html", action=action, intro=intro, masked=codes.mask(user.phone), message=message,
                  status=422 if request.method == "POST" else 200)


def has_verified_phone(user) -> bool:
    """A code to the verified phone proves the person holds more than the mailbox."""
    return user.phone is not None and user.phone_verified_at is not None
