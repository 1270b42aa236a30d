"""Bearer-token authentication and role checks for the API."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from flask_smorest import abort

from claims.auth import Actor, actor_for_token
from claims.runtime import get_session

F = TypeVar("F", bound=Callable[..., Any])
# Paths under /api/v1 that need no token (SPEC §7).
PUBLIC_PATHS = ("/api/v1/auth/token", "/api/v1/status", "/api/v1/openapi.json", "/api/v1/docs")


def authenticate() -> None:
    """before_request for /api/v1: a valid bearer token, else 401 JSON (never a redirect)."""
    if request.method == "OPTIONS" or request.path.startswith(PUBLIC_PATHS):
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        abort(401, message="A bearer token is required.")
    actor = actor_for_token(get_session(), token.strip())
    if actor is None:
        abort(401, message="The token is invalid, expired or revoked.")
    g.actor = actor


def current_actor() -> Actor:
    actor: Actor | None = g.get("actor")
    if actor is None:  # a view reached without authenticate(): a wiring bug, not a user error
        abort(401, message="A bearer token is required.")
    return actor


def roles_required(*roles: str) -> Callable[[F], F]:
    """Only these roles may make the call; others get 403."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current_actor().role not in roles:
                abort(403, message="Your role may not make this call.")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


STAFF_ONLY = roles_required("admin", "clerk")
ANY_STAFF = roles_required("admin", "clerk", "unit_staff")


