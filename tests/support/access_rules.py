"""Declared access rule of every endpoint (ASVS V8, the access-control matrix).

Each endpoint of the app's URL map (core and the installed plugins) has
exactly one rule; ``tests/sweeps/test_access_matrix.py`` fails when an endpoint has
none (a new route cannot ship unchecked) or when a declared one is gone.

Rules:

``public``     anyone (sign-in and sign-up pages, health).
``signed_in``  any signed-in user of the practice (own account, dashboard).
``practice``   any signed-in user of the practice that owns the ids in the
               URL (a chart): another practice's user gets 403/404.
``admin``      administrators only: users.manage, practice.manage,
               plugins.manage or audit.view (a user in emergency-access
               mode holds these too).
``licensed``   a licensed action of a user of the practice that owns the ids
               (signing notes and documents): the licensing plugin and the
               chart's access level decide; a user without a license, an
               administrator included, gets 403 and the refusal is audited.
``link``       emailed-link token routes: a bogus token answers 410/404 or
               a redirect.
``pending``    half-finished sign-in pages (second factor, enrolment): with
               no sign-in under way they send the browser to sign in.
``operator``   for the operator: development loopback only (outbox, reported
               invitations), or the metrics scrape (token, or open in
               development only).
``static``     static files.
``portal``     patient portal pages (``/portal``): only a portal session
               opens them, and only for the patient's own record links;
               anyone else, staff included, is sent to the portal's own
               sign-in.
"""

from __future__ import annotations

RULES = ("public", "signed_in", "practice", "admin", "licensed", "link", "pending", "operator", "static", "portal")

ACCESS_RULES: dict[str, str] = {
    # --- core: public -----------------------------------------------------
    "core.index": "public",
    "core.signin": "public",
    "core.signup": "public",
    "core.forgot_password": "public",
    "core.healthz": "public",
    # --- core: signed in --------------------------------------------------
    "core.account_security": "signed_in",
    "core.change_password": "signed_in",
    "core.change_own_email": "signed_in",
    "login_email.upgrade_login": "signed_in",
    "core.confirm_identity": "signed_in",
    "core.dashboard": "signed_in",
    "core.settings": "signed_in",
    "core.signed_in_browsers": "signed_in",
    "core.end_browser": "signed_in",
    "core.end_other_browsers": "signed_in",
    "core.remove_trusted_browser": "signed_in",
    "core.session_alive": "signed_in",
    "core.lock_screen": "signed_in",
    "core.unlock": "signed_in",
    "core.signout": "signed_in",
    # --- core: administrators ---------------------------------------------
    "core.users": "admin",
    "core.add_user": "admin",
    "core.user_detail": "admin",
    "core.rotate_pac": "admin",
    "core.deactivate_user": "admin",
    "core.reactivate_user": "admin",
    "core.set_admin": "admin",
    "core.set_access_level": "admin",
    "core.reset_user_password": "admin",
    "core.unlock_user": "admin",
    "core.sign_out_everywhere": "admin",
    "core.resend_invitation": "admin",
    "core.change_user_email": "admin",
    "core.reset_user_phone": "admin",
    "core.send_setup_link": "admin",
    "core.security_settings": "admin",
    "core.set_idle_timeout": "admin",
    "core.set_second_factor_policy": "admin",
    "core.plugins_settings": "admin",
    "core.switch_plugin": "admin",
    "core.change_plugin_settings": "admin",
    "core.audit_report": "admin",
    "core.audit_export": "admin",
    "core.audit_verify": "admin",
    "core.failed_sign_ins": "admin",
    # --- core: emailed links ----------------------------------------------
    "core.accept_invitation": "link",
    "core.report_invitation": "link",
    "core.invitation_account": "link",
    "core.invitation_phone": "link",
    "core.invitation_phone_code": "link",
    "core.invitation_phone_resend": "link",
    "core.confirm_email_change": "link",
    "core.confirm_email_change_code": "link",
    "core.confirm_email_change_resend": "link",
    "core.open_setup_link": "link",
    "core.password_reset": "link",
    "core.password_reset_verify": "link",
    "core.password_reset_verify_code": "link",
    "core.password_reset_verify_resend": "link",
    # --- core: half-finished sign-in ----------------------------------------
    "core.signin_verify": "pending",
    "core.signin_enroll": "pending",
    # --- core: operator and static ----------------------------------------
    "core.operator_outbox": "operator",
    "core.operator_reported_invitations": "operator",
    "core.metrics": "operator",
    "core.plugin_static": "static",
    "static": "static",
    # --- login_email, login_pac ---------------------------------------------
    "login_email.signin": "public",
    "login_pac.signin": "public",
    # --- mfa_sms ------------------------------------------------------------
    "mfa_sms.challenge_sms": "pending",
    "mfa_sms.challenge_voice": "pending",
    "mfa_sms.enrol": "pending",
    "mfa_sms.enrol_code": "pending",
    # --- mfa_totp -----------------------------------------------------------
    "mfa_totp.challenge": "pending",
    "mfa_totp.setup": "pending",
    "mfa_totp.remove": "signed_in",
    "mfa_totp.remove_for_user": "admin",
    # --- mfa_webauthn -------------------------------------------------------
    "mfa_webauthn.challenge": "pending",
    "mfa_webauthn.authenticate_options": "pending",
    "mfa_webauthn.authenticate": "pending",
    "mfa_webauthn.register_options": "pending",
    "mfa_webauthn.register": "pending",
    "mfa_webauthn.keys": "signed_in",
    "mfa_webauthn.remove_key": "signed_in",
    "mfa_webauthn.passkey": "public",
    "mfa_webauthn.passkey_options": "public",
    "mfa_webauthn.passkey_verify": "public",
    # --- mfa_recovery -------------------------------------------------------
    "mfa_recovery.challenge": "pending",
    "mfa_recovery.codes": "signed_in",
    # --- licensing ----------------------------------------------------------
    # --- charts: any signed-in user of the practice (patients of that practice only) ---
    "charts.patients": "practice",
    "charts.add_patient": "practice",
    "charts.edit_profile": "practice",
    "charts.chart": "practice",
    "charts.section": "practice",
    "charts.new_entry": "practice",
    "charts.add_entry": "practice",
    "charts.edit_entry": "practice",
    "charts.update_entry": "practice",
    "charts.share_lab_result": "practice",
    "charts.start_encounter": "practice",
    "charts.encounter": "practice",
    "charts.save_note": "practice",
    "charts.sign_encounter": "licensed",
    "charts.add_document": "practice",
    "charts.sign_document": "licensed",
    "licensing.index": "admin",
    "licensing.row": "admin",
    "licensing.assign_form": "admin",
    "licensing.search": "admin",
    "licensing.assign_slot": "admin",
    "licensing.revoke_slot": "admin",
    "licensing.purchase_form": "admin",
    "licensing.remove_form": "admin",
    "licensing.assign_user": "admin",
    "licensing.revoke_user": "admin",
    "licensing.profile": "admin",
    # --- emergency_access ---------------------------------------------------
    "emergency_access.index": "signed_in",
    "emergency_access.confirm": "signed_in",
    "emergency_access.activate_view": "signed_in",
    "emergency_access.deactivate_own": "signed_in",
    "emergency_access.deactivate_other": "admin",
    "emergency_access.allow": "admin",
    "emergency_access.grant": "admin",
    "emergency_access.save_settings": "admin",
    # patient_portal (staff)
    "patient_portal.enrolment": "practice",
    "patient_portal.invite_form": "practice",
    "patient_portal.review_invite": "practice",
    "patient_portal.send_invite": "practice",
    "patient_portal.resend": "practice",
    "patient_portal.cancel": "practice",
    "patient_portal.revoke": "practice",
    "patient_portal.invite_settings": "signed_in",
    "patient_portal.save_invite_settings": "admin",
    # patient_portal (patient side)
    "patient_portal_public.signin": "public",
    "patient_portal_public.forgot_password": "public",
    "patient_portal_public.reset_password": "link",
    "patient_portal_public.register": "link",
    "patient_portal_public.register_phone": "link",
    "patient_portal_public.register_code": "link",
    "patient_portal_public.register_account": "link",
    "patient_portal_public.register_create": "link",
    "patient_portal_public.register_link": "link",
    "patient_portal_public.signin_code": "portal",
    "patient_portal_public.signout": "portal",
    "patient_portal_public.home": "portal",
    "patient_portal_public.authenticator": "portal",
    "patient_portal_public.remove_authenticator": "portal",
    "patient_portal_public.download": "portal",
    "patient_portal_public.download_file": "portal",
    "patient_portal_public.activity": "portal",
}
