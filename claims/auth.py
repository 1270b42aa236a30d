"""Staff identities: argon2 password hashes and revocable bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from claims.models import ApiToken, Unit, User

ROLES = ("admin", "clerk", "unit_staff")
_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the timing of a wrong
# username close to that of a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-password")


@dataclass(frozen=True)
class Actor:
    """Who fires an event: a staff user, or a job (role "system")."""

    username: str
    role: str
    unit_id: int | None = None
    user_id: int | None = None

    @property
    def is_unit_staff(self) -> bool:
        return self.role == "unit_staff"


def system_actor(job: str) -> Actor:
    return Actor(username=f"job:{job}", role="system")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User | None, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and bool(
            user and user.active
        )
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, ttl_seconds: int) -> tuple[str, int]:
    """A new bearer token for the user; only its digest is stored."""
    token = secrets.token_urlsafe(32)
    assert user.id is not None
    session.add(ApiToken(digest=_digest(token), user_id=user.id,
                         expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds)))
    return token, ttl_seconds


# Every authenticated call looks its token up: one statement, built once.
_TOKEN, _USER = ApiToken.__table__, User.__table__  # type: ignore[attr-defined]
TOKEN_HOLDER = (sa.select(_TOKEN.c.revoked_at, _TOKEN.c.expires_at, _USER.c.username,
                          _USER.c.role, _USER.c.unit_id, _USER.c.id, _USER.c.active)
                .join_from(_TOKEN, _USER, _USER.c.id == _TOKEN.c.user_id)
                .where(_TOKEN.c.digest == sa.bindparam("digest")))


def token_digest(token: str) -> str:
    """What is stored of a token, and what the console's session keeps of its sign-in: the
    signed cookie is readable, and a digest in it is no bearer token for the API."""
    return _digest(token)


def actor_for_token(reads: Session | sa.Connection, token: str) -> Actor | None:
    """The actor a token stands for, or None when it is unknown, expired or revoked."""
    return actor_for_digest(reads, _digest(token))


def actor_for_digest(reads: Session | sa.Connection, digest: str) -> Actor | None:
    """The actor of the token with this digest (a console sign-in), as actor_for_token."""
    row = reads.execute(TOKEN_HOLDER, {"digest": digest}).first()
    if row is None or row.revoked_at is not None or row.expires_at <= datetime.now(UTC):
        return None
    if not row.active:
        return None
    return Actor(username=row.username, role=row.role, unit_id=row.unit_id, user_id=row.id)


def revoke_token(session: Session, token: str) -> bool:
    return revoke_digest(session, _digest(token))


def revoke_digest(session: Session, digest: str) -> bool:
    """End the token with this digest; False when it was unknown or ended already."""
    api_token = session.exec(select(ApiToken).where(ApiToken.digest == digest)).first()
    if api_token is None or api_token.revoked_at is not None:
        return False
    api_token.revoked_at = datetime.now(UTC)
    session.add(api_token)
    return True


def revoke_user_tokens(session: Session, user_id: int) -> int:
    """End every live token of the user (API tokens and console sign-ins); how many."""
    result = session.execute(sa.update(_TOKEN).where(
        _TOKEN.c.user_id == user_id, _TOKEN.c.revoked_at.is_(None),
        _TOKEN.c.expires_at > datetime.now(UTC)).values(revoked_at=datetime.now(UTC)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# Ended tokens are kept this long (an operator looking into a sign-in sees them), then pruned.
ENDED_TOKENS_KEPT = timedelta(days=30)


def prune_tokens(session: Session, now: datetime) -> int:
    """Delete tokens (API and console sign-ins) that expired or were revoked over
    ENDED_TOKENS_KEPT ago; how many. A token in use is never touched."""
    before = now - ENDED_TOKENS_KEPT
    result = session.execute(sa.delete(_TOKEN).where(
        sa.or_(_TOKEN.c.expires_at < before, _TOKEN.c.revoked_at < before)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class UserError(ValueError):
    pass


def _check_new_password(password: str) -> None:
    if len(password) < 8:
        raise UserError("password must have at least 8 characters")


def _user_named(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise UserError(f"no user {username}")
    return user


def set_password(session: Session, *, username: str, password: str) -> User:
    """A new password; the user's tokens and console sign-ins end (sign in again)."""
    _check_new_password(password)
    user = _user_named(session, username)
    user.password_hash = hash_password(password)
    session.add(user)
    revoke_user_tokens(session, user.id)  # type: ignore[arg-type]
    return user


def set_active(session: Session, *, username: str, active: bool) -> User:
    """Enable or disable a user; disabling ends their tokens and console sign-ins."""
    user = _user_named(session, username)
    user.active = active
    session.add(user)
    if not active:
        revoke_user_tokens(session, user.id)  # type: ignore[arg-type]
    return user


def create_user(session: Session, *, username: str, role: str, password: str,
                unit_code: str | None = None) -> User:
    """Create a staff user; unit_staff need a unit, the others must not have one."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 100:
        raise UserError("username must have 1 to 100 characters")
    _check_new_password(password)
    unit_id = None
    if role == "unit_staff":
        if not unit_code:
            raise UserError("unit_staff need --unit CODE")
        unit_code = unit_code.strip().upper()  # unit codes are kept upper-cased
        unit = session.exec(select(Unit).where(Unit.code == unit_code)).first()
        if unit is None:
            raise UserError(f"no unit with code {unit_code}")
        unit_id = unit.id
    elif unit_code:
        raise UserError("only unit_staff belong to a unit")
    if session.exec(select(User).where(User.username == username)).first():
        raise UserError(f"user {username} exists already")
    user = User(username=username, role=role, unit_id=unit_id,
                password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user
