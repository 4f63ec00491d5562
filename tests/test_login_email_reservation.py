"""A login email is reserved when an invitation is accepted, not when it is sent.

A self-signed-up practice could "add" someone else's address and so stop
that person from signing up or being added by their real practice, with an
invitation email carrying the squatter's practice name. Now pending
invitations to one address from several practices coexist; accepting one
makes the others unusable; sign-in by email finds only the accepted user;
practice names carry no links; and an invitee can report an invitation they
did not expect.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pfcore.db import session
from pfcore.models import Practice, User, utcnow

from .support.apps import Browserless
from .support.journeys import SIGNUP, last_link, sign_in_email, signup
from .support.records import audit_rows
from .support.servers import body_of
from .test_users import PASSWORD, verify_phone

ADDRESS = "x@example.org"
INVITEE = {"first_name": "Xavier", "last_name": "Example", "email": ADDRESS, "access_level": "2"}
TAKEN_ELSEWHERE = "This email address already has a pfcore account"


def _practice_named(app, name: str) -> Practice:
    with app.app_context():
        return session().scalars(select(Practice).where(Practice.name == name)).one()


def _users_with(app, email: str) -> list[User]:
    with app.app_context():
        return list(session().scalars(select(User).where(User.email == email).order_by(User.id)))


def _second_practice(app, name="Squatter Clinic", email="owner@squatter.example.net") -> Browserless:
    other = Browserless(app.test_client())
    signup(other, practice_name=name, email=email)
    return other


def _add(web, **changes):
    return web.post("/settings/users/new", dict(INVITEE, **changes))


def _links(inbox, address=ADDRESS) -> list[str]:
    """Every invitation link sent to ``address``, oldest first."""
    return [
        re.search(r"http://pfcore\.test(/invitation/[^\s]+)", body_of(m)).group(1)
        for m in inbox.wait_for(address)
        if "/invitation/" in body_of(m)
    ]


def _accept(app, invitee: Browserless, link: str, pac: str, phone="+14155550177", username="xexample"):
    assert invitee.post(link, {"pac": pac}).status_code == 302
    verify_phone(app, invitee, link, phone)
    return invitee.post(link + "/account", {"username": username, "password": PASSWORD, "confirm": PASSWORD})


def test_a_pending_invitation_does_not_stop_another_practice_signing_up_with_the_address(app, admin_web, inbox):
    squatter = _second_practice(app)
    assert _add(squatter).status_code == 302
    owner = Browserless(app.test_client())
    response = owner.post(
        "/signup",
        {
            "practice_name": "Real Clinic",
            "first_name": "Xavier",
            "last_name": "Example",
            "email": "X@Example.org",
            "phone": "415-555-0199",
            "specialty": "Family medicine",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert [u.status for u in _users_with(app, ADDRESS)] == ["invited", "active"]


def test_pending_invitations_from_several_practices_coexist(app, admin_web, inbox):
    squatter = _second_practice(app)
    assert _add(squatter).status_code == 302
    response = _add(admin_web)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert [u.status for u in _users_with(app, ADDRESS)] == ["invited", "invited"]
    assert len(_links(inbox)) == 2


def test_the_same_address_is_still_refused_twice_in_one_practice(app, admin_web, inbox):
    assert _add(admin_web).status_code == 302
    response = _add(admin_web, email="X@example.ORG", first_name="Other")
    assert response.status_code == 422
    assert "The provided login email address is already in use by another user" in response.get_data(as_text=True)
    assert len(_users_with(app, ADDRESS)) == 1


def test_accepting_one_invitation_makes_the_others_unusable(app, admin_web, inbox):
    squatter = _second_practice(app)
    _add(squatter)
    _add(admin_web)
    squatters_link, real_link = _links(inbox)
    invitee = Browserless(app.test_client())
    real_pac = _practice_named(app, "Sunrise Family Clinic").pac
    response = _accept(app, invitee, real_link, real_pac)
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")

    page = Browserless(app.test_client()).get(squatters_link)
    assert page.status_code == 410
    assert TAKEN_ELSEWHERE in page.get_data(as_text=True)
    squatters_user = _users_with(app, ADDRESS)[0]
    assert squatters_user.status == "invited"
    listing = squatter.get("/settings/users").get_data(as_text=True)
    assert "Has an account elsewhere" in listing
    resend = squatter.htmx_post(f"/settings/users/{squatters_user.id}/resend", page="/settings/users")
    assert resend.status_code == 422 and TAKEN_ELSEWHERE in resend.get_data(as_text=True)
    assert len(_links(inbox)) == 2


def test_the_other_invitation_cannot_be_finished_once_the_address_is_taken(app, admin_web, inbox):
    """Both invitees got as far as the password page; the second to finish is refused."""
    squatter = _second_practice(app)
    _add(squatter)
    _add(admin_web)
    squatters_link, real_link = _links(inbox)
    first, second = Browserless(app.test_client()), Browserless(app.test_client())
    assert first.post(squatters_link, {"pac": _practice_named(app, "Squatter Clinic").pac}).status_code == 302
    verify_phone(app, first, squatters_link, "+14155550178")
    assert _accept(app, second, real_link, _practice_named(app, "Sunrise Family Clinic").pac).status_code == 302
    response = first.post(squatters_link + "/account", {"username": "xex", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 410
    assert TAKEN_ELSEWHERE in response.get_data(as_text=True)
    assert [u.status for u in _users_with(app, ADDRESS)] == ["invited", "active"]


def test_sign_in_and_password_reset_by_email_find_the_accepted_user(app, admin_web, inbox):
    squatter = _second_practice(app)
    third = _second_practice(app, name="Third Clinic", email="owner@third.example.net")
    _add(squatter)
    _add(admin_web)
    _add(third)
    real_link = _links(inbox)[1]
    _accept(app, Browserless(app.test_client()), real_link, _practice_named(app, "Sunrise Family Clinic").pac)
    accepted = _users_with(app, ADDRESS)[1]

    person = Browserless(app.test_client())
    response = sign_in_email(person, ADDRESS, PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "Sunrise Family Clinic" in person.get("/dashboard").get_data(as_text=True)
    assert audit_rows(app, "signin.success")[-1].actor_id == accepted.id

    assert Browserless(app.test_client()).post("/password/forgot", {"email": ADDRESS}).status_code == 200
    assert "/password-reset/" in last_link(inbox, ADDRESS, "/password-reset/")
    with app.app_context():
        from pfcore.models import UserToken

        resets = session().scalars(select(UserToken).where(UserToken.purpose == "password_reset")).all()
    assert [row.user_id for row in resets] == [accepted.id]


def test_sign_in_by_email_ignores_pending_invitations(app, admin_web, inbox):
    """Two pending invitations to one address: signing in with it is the ordinary failure, not an error."""
    from pfcore.security.signin import GENERIC_FAILURE

    _add(_second_practice(app))
    _add(admin_web)
    response = Browserless(app.test_client()).post("/login-email/", {"email": ADDRESS, "password": PASSWORD})
    assert response.status_code == 422
    assert GENERIC_FAILURE in response.get_data(as_text=True)


def test_changing_a_login_email_to_an_address_with_pending_invitations_is_allowed(app, admin_web, inbox):
    _add(_second_practice(app))
    grace = _users_with(app, "grace@sunrise.example.com")[0]
    detail = f"/settings/users/{grace.id}"
    response = admin_web.htmx_post(f"{detail}/email", {"email": ADDRESS, "confirm_email": ADDRESS}, page=detail)
    assert response.status_code == 200 and "We sent a confirmation link" in response.get_data(as_text=True)
    assert "/account/email-change/" in last_link(inbox, ADDRESS, "/account/email-change/")


# --- the database's own rule -------------------------------------------------


def _insert(app, practice_id: int, status: str, email=ADDRESS):
    with app.app_context():
        session().add(
            User(
                practice_id=practice_id,
                first_name="X",
                last_name="Y",
                email=email,
                status=status,
                access_level=1,
                is_admin=False,
                session_generation=0,
                created_at=utcnow(),
            )
        )
        session().commit()


def test_the_database_reserves_an_address_once_across_practices_and_once_per_practice(app, admin_web):
    practices = [_practice_named(app, "Sunrise Family Clinic").id]
    for n in (2, 3, 4):
        _second_practice(app, name=f"Clinic {n}", email=f"owner@clinic{n}.example.net")
        practices.append(_practice_named(app, f"Clinic {n}").id)
    _insert(app, practices[0], "invited")
    _insert(app, practices[1], "invited")
    with pytest.raises(IntegrityError):
        _insert(app, practices[0], "invited")
    _insert(app, practices[2], "active")
    with pytest.raises(IntegrityError):
        _insert(app, practices[3], "inactive")
    assert [u.status for u in _users_with(app, ADDRESS)] == ["invited", "invited", "active"]


# --- practice names ------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Click http://evil.example/login now",
        "Visit www.evil.com",
        "evil.com clinic",
        "Mail help@evil.org",
        "Sunrise EVIL.COM",
        "https://x.y",
        "Clinic at bit.ly/abc",
    ],
)
def test_practice_names_with_links_or_addresses_are_refused_at_sign_up(app, web, name):
    response = web.post("/signup", dict(SIGNUP, practice_name=name))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "A practice name cannot contain a web address or an email address." in page
    assert 'name="practice_name"' in page
    with app.app_context():
        assert session().scalars(select(Practice)).all() == []


@pytest.mark.parametrize("name", ["Dr. Smith & Partners", "St. Mary's Clinic", "Smith, Jones and Co.", "A.B. Care"])
def test_ordinary_practice_names_with_dots_are_accepted(app, web, name):
    response = web.post("/signup", dict(SIGNUP, practice_name=name))
    assert response.status_code == 302, response.get_data(as_text=True)


def test_the_command_line_refuses_a_practice_name_with_a_link(app):
    from pfcore.cli import cli

    result = app.test_cli_runner().invoke(
        cli,
        [
            "create-practice",
            "--name",
            "go to evil.com",
            "--admin-email",
            "a@b.example.org",
            "--admin-first-name",
            "A",
            "--admin-last-name",
            "B",
        ],
    )
    assert result.exit_code != 0
    assert "cannot contain a web address" in result.output


# --- reporting an unexpected invitation ------------------------------------


def test_an_invitee_reports_an_unexpected_invitation(app, inbox):
    squatter = _second_practice(app)
    _add(squatter)
    (link,) = _links(inbox)
    assert "did not expect this invitation" in body_of(inbox.wait_for(ADDRESS)[0])
    invitee = Browserless(app.test_client())
    page = invitee.get(link).get_data(as_text=True)
    assert "I did not expect this invitation" in page
    response = invitee.post(link + "/report", page=link)
    assert response.status_code == 200
    assert "reported" in response.get_data(as_text=True)

    assert invitee.get(link).status_code == 410
    (event,) = audit_rows(app, "user.invitation_reported")
    user = _users_with(app, ADDRESS)[0]
    assert event.practice_id == _practice_named(app, "Squatter Clinic").id
    assert event.object_id == str(user.id) and event.actor_type == "anonymous"
    operator = app.test_client().get("/operator/reported-invitations", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert operator.status_code == 200
    listing = operator.get_data(as_text=True)
    assert "Squatter Clinic" in listing and ADDRESS in listing
    assert "Reported by the invitee" in squatter.get("/settings/users").get_data(as_text=True)
    resend = squatter.htmx_post(f"/settings/users/{user.id}/resend", page="/settings/users")
    assert resend.status_code == 422
    assert len(_links(inbox)) == 1


def test_reported_invitations_page_is_for_the_operator_only(app):
    assert (
        app.test_client().get("/operator/reported-invitations", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code
        == 404
    )


def test_the_report_link_does_nothing_for_a_used_link(app, admin_web, inbox):
    _add(admin_web)
    (link,) = _links(inbox)
    invitee = Browserless(app.test_client())
    _accept(app, invitee, link, _practice_named(app, "Sunrise Family Clinic").pac)
    response = Browserless(app.test_client()).post(link + "/report", page="/signup")
    assert response.status_code == 410
    assert audit_rows(app, "user.invitation_reported") == []


def test_the_operator_lists_reported_invitations_from_the_command_line(app, inbox):
    from pfcore.cli import cli

    runner = app.test_cli_runner()
    assert "No invitation has been reported." in runner.invoke(cli, ["reported-invitations"]).output
    _add(_second_practice(app))
    (link,) = _links(inbox)
    Browserless(app.test_client()).post(link + "/report", page=link)
    result = runner.invoke(cli, ["reported-invitations"])
    assert result.exit_code == 0
    assert "(Squatter Clinic)" in result.output and ADDRESS in result.output
