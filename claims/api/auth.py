"""POST /auth/token: a bearer token for a staff user; DELETE /auth/token revokes the caller's."""

from __future__ import annotations

from typing import Any

import flask
from flask import request
from flask.views import MethodView
from flask_smorest import abort
from sqlmodel import select

from claims.api.base import Blueprint, error_response
from claims.api.security import ANY_STAFF, Lockout, login_guard
from claims.api.status import client_address
from claims.auth import check_password, issue_token, revoke_token
from claims.models import User
from claims.runtime import get_runtime, get_session
from claims.schemas.auth import TokenRequestSchema, TokenSchema

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Staff sign-in")


class SignInLocked(Exception):
    """Too many wrong passwords for this username or from this address."""

    def __init__(self, lockout: Lockout) -> None:
        super().__init__(lockout.scope)
        self.lockout = lockout


@blp.errorhandler(SignInLocked)
def _locked(error: SignInLocked) -> flask.Response:
    seconds = error.lockout.retry_after
    if error.lockout.scope == "username":
        code, message = "locked", "Too many wrong passwords: this username is locked"
    else:
        code, message = "too_many_attempts", "Too many wrong passwords from this address"
    response = error_response(429, f"{message}; try again in {seconds} seconds.", code=code,
                              retry_after=seconds)
    response.headers["Retry-After"] = str(seconds)
    return response


@blp.route("/token")
class TokenView(MethodView):
    @blp.doc(security=[])
    @blp.arguments(TokenRequestSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="Wrong username or password")
    @blp.alt_response(429, description="Too many wrong passwords for the username or from the "
                                       "address: locked for a while, see Retry-After")
    def post(self, credentials: dict[str, Any]) -> dict[str, Any]:
        """Exchange a username and password for a bearer token."""
        username, address = credentials["username"], client_address()
        guard = login_guard()
        lockout = guard.locked(username, address)
        if lockout is not None:
            raise SignInLocked(lockout)
        session = get_session()
        user = session.exec(select(User).where(User.username == username)).first()
        if not check_password(user, credentials["password"]):
            guard.failed(username, address)
            abort(401, message="Wrong username or password.")
        assert user is not None
        guard.succeeded(username)
        token, ttl = issue_token(session, user, get_runtime().settings.token_ttl_seconds)
        session.commit()
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}, {
            "Cache-Control": "no-store"}

    @ANY_STAFF
    @blp.response(204)
    def delete(self) -> None:
        """Revoke the token this call is made with (sign out); it answers 401 from then on."""
        token = request.headers.get("Authorization", "").partition(" ")[2].strip()
        session = get_session()
        revoke_token(session, token)
        session.commit()
