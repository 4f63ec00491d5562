"""Page or fragment, decided in one place.

A page template defines ``{% block %}``s. A partial htmx request gets just the
named block (jinja2-fragments), everything else the full page, so the two
can never drift apart.
"""
from __future__ import annotations

from flask import make_response, render_template, request
from jinja2_fragments.flask import render_block


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
