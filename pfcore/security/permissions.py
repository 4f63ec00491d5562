"""Permission as a question: ``can(user, action, target)``.

Every enabled plugin may answer through the ``permission_allowed`` hook:
any explicit deny wins, then any allow; with no allow the answer is no.
The core's own answer (administrators may do the administrative actions) is
a ``trylast`` hook implementation, so a plugin can grant or deny beside it.
"""

from __future__ import annotations

from functools import wraps

from flask import abort, current_app, g

# Actions the core treats as practice administration.
ADMIN_ACTIONS = frozenset({"users.manage", "practice.manage", "plugins.manage", "audit.view"})
# Changing what a user may do (their administrator flag, access level, status, or a
# grant a plugin adds), asked with the user as the target after "users.manage": a plugin
# can refuse it for some targets (e.g. a plugin that elevates access refuses it for the
# elevated user's own account and for administrators). Administrators may.
CHANGE_PRIVILEGES = "users.change_privileges"


def can(user, action: str, target=None) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    cache = g.setdefault("_pfcore_permission_cache", {})
    key = (user.id, action, id(target) if target is not None else None)
    if key not in cache:
        registry = current_app.extensions["pfcore.plugins"]
        answers = registry.hook(user.practice).permission_allowed(
            practice=user.practice, user=user, action=action, target=target
        )
        cache[key] = (False not in answers) and (True in answers)
    return cache[key]


def why_not(user, action: str, target=None) -> str | None:
    """Why ``can(user, action, target)`` says no, from the plugin that refused
    (``permission_denied_reason``); ``None`` when it says yes or nobody explains."""
    if user is None or can(user, action, target):
        return None
    registry = current_app.extensions["pfcore.plugins"]
    return registry.hook(user.practice).permission_denied_reason(
        practice=user.practice, user=user, action=action, target=target
    )


def require(action: str):
    """View decorator: 403 unless the signed-in user ``can(action)``."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not can(g.get("pfcore_user"), action):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator
