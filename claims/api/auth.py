"""POST /auth/token: a bearer token for a staff user."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from sqlmodel import select

from claims.api.base import Blueprint
from claims.auth import check_password, issue_token
from claims.models import User
from claims.runtime import get_runtime, get_session
from claims.schemas.auth import TokenRequestSchema, TokenSchema

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Staff sign-in")


@blp.route("/token")
class TokenView(MethodView):
    @blp.arguments(TokenRequestSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="Wrong username or password")
    def post(self, credentials: dict[str, Any]) -> dict[str, Any]:
        """Exchange a username and password for a bearer token."""
        session = get_session()
        user = session.exec(select(User).where(User.username == credentials["username"])).first()
        if not check_password(user, credentials["password"]):
            abort(401, message="Wrong username or password.")
        assert user is not None
        token, ttl = issue_token(session, user, get_runtime().settings.token_ttl_seconds)
        session.commit()
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}
