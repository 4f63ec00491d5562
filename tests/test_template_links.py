"""Links in templates are built once per app and then remembered (pfcore/web/urls.py):
the remembered link must be exactly what Flask's url_for builds, every time."""

from __future__ import annotations

import pytest
from flask import url_for

from pfcore.web import urls


@pytest.fixture
def links(app):
    app.extensions.pop("pfcore.links", None)
    return app


def test_templates_use_the_remembering_url_for(app):
    assert app.jinja_env.globals["url_for"] is urls.template_url_for


@pytest.mark.parametrize(
    "endpoint, values",
    [
        ("core.user_detail", {"user_id": 7}),
        ("core.user_detail", {"user_id": "7"}),
        ("core.audit_report", {}),
        ("core.audit_report", {"emergency": 1}),
        ("core.audit_report", {"emergency": True}),
        ("core.audit_report", {"user": 3, "action": "signin.success"}),
        ("core.signin", {"next": "/settings/users?fragment=1&x=<b>"}),
        ("core.signin", {"next": None}),
    ],
)
def test_a_remembered_link_is_the_link_flask_builds(links, endpoint, values):
    with links.test_request_context("/"):
        first = urls.template_url_for(endpoint, **values)
        again = urls.template_url_for(endpoint, **values)
        assert first == again == url_for(endpoint, **values)
    assert links.extensions["pfcore.links"]  # it was remembered


def test_equal_values_of_different_types_are_different_links(links):
    """1 == True as dictionary keys, but the links differ ("1" and "True")."""
    with links.test_request_context("/"):
        one = urls.template_url_for("core.audit_report", emergency=1)
        true = urls.template_url_for("core.audit_report", emergency=True)
        assert one == url_for("core.audit_report", emergency=1)
        assert true == url_for("core.audit_report", emergency=True)
        assert one != true


def test_the_script_root_is_part_of_the_link(links):
    """pfcore mounted under a prefix (SCRIPT_NAME) links under that prefix."""
    with links.test_request_context("/"):
        plain = urls.template_url_for("core.user_detail", user_id=7)
    with links.test_request_context("/", base_url="http://localhost/pfcore/"):
        mounted = urls.template_url_for("core.user_detail", user_id=7)
    assert mounted == "/pfcore" + plain


def test_external_links_anchors_and_unhashable_values_go_to_flask(links):
    with links.test_request_context("/", base_url="https://pfcore.example.org"):
        assert urls.template_url_for("core.audit_report", _external=True) == "https://pfcore.example.org" + url_for(
            "core.audit_report"
        )
        assert urls.template_url_for("core.audit_report", _anchor="results").endswith("#results")
        assert urls.template_url_for("core.audit_report", action=["a", "b"]) == url_for(
            "core.audit_report", action=["a", "b"]
        )
    assert not links.extensions.get("pfcore.links")  # none of these was remembered


def test_a_relative_endpoint_is_read_in_the_blueprint_of_the_request(links):
    with links.test_request_context("/settings/users"):
        assert urls.template_url_for(".user_detail", user_id=7) == url_for("core.user_detail", user_id=7)


def test_the_remembered_links_are_bounded(links, monkeypatch):
    monkeypatch.setattr(urls, "MAX_LINKS", 5)
    with links.test_request_context("/"):
        for user_id in range(12):
            assert urls.template_url_for("core.user_detail", user_id=user_id) == url_for(
                "core.user_detail", user_id=user_id
            )
    assert len(links.extensions["pfcore.links"]) <= 5
