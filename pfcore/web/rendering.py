"""Page or fragment, decided in one place.

A page template defines ``{% block %}``s. A partial htmx request gets just the
named block (jinja2-fragments), everything else the full page, so the two
can never drift apart.
"""

from __future__ import annotations

from flask import make_response, render_template, request, url_for
from jinja2_fragments.flask import render_block

from ..security.signin import GENERIC_FAILURE, password_sign_in, safe_next


def is_partial_request() -> bool:
    """htmx asked for part of a page (htmx 4 sends HX-Request-Type: partial)."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Request-Type", "partial") != "full"


def render(template: str, *, block: str | None = None, status: int = 200, **context):
    """Render ``block`` of ``template`` for htmx partial requests, else the whole page."""
    if block and is_partial_request():
        html = render_block(template, block, **context)
    else:
        html = render_template(template, **context)
    response = make_response(html, status)
    response.vary.add("HX-Request")
    return response


def render_form_errors(template: str, *, block: str | None = None, **context):
    """A form with messages on bad input: 422 and the form re-rendered."""
    return render(template, block=block, status=422, **context)


def password_sign_in_page(form, template: str, *, find_user, method: str, plugin_name: str):
    """The page flow shared by password login strategies (GET shows, POST signs in).

    ``find_user(form)`` returns ``(user or None, practice_id or None, identifier)``
    for the audit record; everything else (one hash per attempt, account
    checks, the generic failure, the redirect) is the same for every strategy.
    """
    next_path = request.values.get("next")
    if request.method == "GET":
        return render(template, form=form, next=next_path)
    if form.validate():
        user, practice_id, identifier = find_user(form)
        response = password_sign_in(
            user,
            form.password.data,
            method=method,
            practice_id=practice_id,
            identifier=identifier,
            plugin_name=plugin_name,
            next_path=safe_next(next_path, url_for("core.dashboard")),
        )
        if response is not None:
            return response
        form.form_errors.append(GENERIC_FAILURE)
    return render_form_errors(template, form=form, next=next_path)
