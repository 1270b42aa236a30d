"""SQLModel tables: the county's units, members, enrolments, claims and their audit trail."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

_Row = TypeVar("_Row", bound=SQLModel)
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC in Python, whatever the database keeps."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _stamp(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kwargs)


def _fen(default: Any = ..., **kwargs: Any) -> Any:
    """Money in fen: 64-bit, since 99,999,999.99 yuan is past a 32-bit integer."""
    if default is ...:
        return Field(sa_type=sa.BigInteger, **kwargs)
    return Field(default=default, sa_type=sa.BigInteger, **kwargs)


def _json(**kwargs: Any) -> Any:
    return Field(sa_type=JSONType, **kwargs)


# Default factories as Python functions: pydantic inspects a factory's signature on every
# construction, and a builtin's (list, dict) it parses from text (a tenth of logging a claim).
def empty_list() -> list[Any]:
    return []


def empty_dict() -> dict[str, Any]:
    return {}


def built_as_loaded(model: type[_Row], values: dict[str, Any]) -> _Row:
    """A new, unsaved row of `model` with these column values and every other field's default,
    put together as the ORM puts a loaded row together: Claim(**values) fires an attribute
    event per column (0.3 ms, about a fifteenth of logging a claim; docs/performance.md)."""
    mapper = sa.inspect(model)
    if not mapper.configured:  # a first ORM query would have configured it
        sa.orm.configure_mappers()
    row: _Row = mapper.class_manager.new_instance()
    defaults, factories = _defaults_of(model)
    row.__dict__.update(defaults)
    row.__dict__.update({name: factory() for name, factory in factories})
    row.__dict__.update(values)
    return row


@cache
def _defaults_of(model: type[SQLModel]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """A model's plain defaults, and the factories of the rest (called afresh for each row)."""
    fields = model.model_fields.items()
    return ({name: field.default for name, field in fields
             if field.default_factory is None and not field.is_required()},
            [(name, field.default_factory) for name, field in fields
             if field.default_factory is not None])


class Unit(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True, index=True)
    name: str = Field(max_length=200)
    area: str | None = Field(default=None, max_length=200)
    union_contact: str | None = Field(default=None, max_length=200)
    union_phone: str | None = Field(default=None, max_length=200)
    union_email: str | None = Field(default=None, max_length=200)
    employee_count: int = 0
    created_at: datetime = _stamp()


class Member(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    name: str = Field(max_length=200)
    id_number: str = Field(max_length=18, unique=True, index=True)
    birth_date: date
    sex: str = Field(max_length=1)
    phone: str | None = Field(default=None, max_length=200)
    created_at: datetime = _stamp()


class Enrolment(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_enrolment_member_product", "member_id", "product_code"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    product_code: str = Field(max_length=40)
    shares: int
    start_date: date
    end_date: date
    created_at: datetime = _stamp()


class Batch(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    batch_no: str = Field(max_length=20, unique=True, index=True)
    week: str = Field(max_length=10, index=True)  # ISO week, e.g. 2026-W48
    sealed_at: datetime = _stamp()
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claim_count: int = 0
    total_claimed: int = _fen(0)  # fen, the sum of the claims' estimates
    # The manifest and its transmission to the city office (SPEC §4).
    manifest_written_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    manifest_digest: str | None = Field(default=None, max_length=64)  # SHA-256 of its CSV
    transmission: str = Field(default="folder", max_length=10)  # folder, smtp, http
    transmission_state: str = Field(default="pending", max_length=10)  # pending, sent, failed
    transmission_attempts: int = 0
    transmission_next_try_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    transmission_error: str | None = Field(default=None, max_length=500)
    transmitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    overdue_flagged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


_CLAIM_VERSION = sa.Column("version", sa.Integer, nullable=False)


class Claim(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_claim_state_id", "state", "id"),
        sa.Index("ix_claim_unit_id", "unit_id", "id"),
        sa.Index("ix_claim_member_product", "member_id", "product_code", "incident_date"),
        # Lists newest first by product, by batch, by unit and state; the status check by
        # beneficiary (migration 0005, found with `python -m bench load`).
        sa.Index("ix_claim_product_id", "product_code", "id"),
        sa.Index("ix_claim_batch", "batch_id", "id"),
        sa.Index("ix_claim_unit_state", "unit_id", "state", "id"),
        sa.Index("ix_claim_beneficiary", "beneficiary_id_number",
                 postgresql_where=sa.text("beneficiary_id_number IS NOT NULL"),
                 sqlite_where=sa.text("beneficiary_id_number IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    claim_no: str = Field(max_length=20, unique=True, index=True)
    member_id: int = Field(foreign_key="member.id")
    unit_id: int = Field(foreign_key="unit.id")  # the member's unit when logged: scoping and lists
    product_code: str = Field(max_length=40)
    enrolment_id: int | None = Field(default=None, foreign_key="enrolment.id")
    cause: str = Field(max_length=10)
    incident_date: date
    admission_date: date | None = None
    discharge_date: date | None = None
    hospital: str | None = Field(default=None, max_length=200)
    diagnosis: str | None = Field(default=None, max_length=200)
    total_expense: int = _fen(0)  # fen
    insurance_paid: int = _fen(0)  # fen
    self_paid: int = _fen(0)  # fen
    disability_grade: int | None = None
    disability_assessed_on: date | None = None  # the assessment's date (SPEC §2: 180 days)
    death: bool = False
    beneficiary_name: str | None = Field(default=None, max_length=200)
    beneficiary_id_number: str | None = Field(default=None, max_length=18)
    beneficiary_relation: str | None = Field(default=None, max_length=200)
    documents: list[dict[str, Any]] = _json(default_factory=empty_list)
    estimate: int = _fen(0)  # fen
    approved_amount: int | None = _fen(None)  # fen, the city office's decision
    approved_on: date | None = None  # configured time zone: "approved, no money after N days"
    paid_amount: int | None = _fen(None)  # fen, paid to the worker
    above_estimate: bool = False  # approved above the estimate: flagged for review
    state: str = Field(default="logged", max_length=20)
    # Optimistic locking: SQLAlchemy bumps it on every UPDATE, "WHERE version = :old".
    version: int | None = Field(default=None, sa_column=_CLAIM_VERSION)
    batch_id: int | None = Field(default=None, foreign_key="batch.id")
    last_reason: str | None = Field(default=None, max_length=200)
    last_reason_code: str | None = Field(default=None, max_length=40)  # config/reasons.toml
    onsite_date: date | None = None
    onsite_place: str | None = Field(default=None, max_length=200)
    receipt_no: str | None = Field(default=None, max_length=200, unique=True)
    proxy_name: str | None = Field(default=None, max_length=200)
    proxy_reference: str | None = Field(default=None, max_length=200)
    collected_on: date | None = None
    logged_on: date  # in the configured time zone: the claim deadline counts to it
    logged_at: datetime = _stamp()
    updated_at: datetime = _stamp()

    __mapper_args__ = {"version_id_col": _CLAIM_VERSION}


class ClaimTally(SQLModel, table=True):
    """Claims counted by unit, state and product, kept by triggers on `claim` (migrations
    0006, 0007): the lists' X-Pagination totals and /metrics read it instead of counting
    every claim."""

    __tablename__ = "claim_tally"
    __table_args__ = (sa.Index("ix_claim_tally_state", "state"),
                      sa.Index("ix_claim_tally_unit_state", "unit_id", "state"),
                      sa.Index("ix_claim_tally_product_state", "product_code", "state"))

    # Deltas, not one row per (unit, state) updated in place: a row every writer must lock
    # would make concurrent claim changes queue on it, and deadlock on PostgreSQL when two
    # transactions touch two units in opposite orders. Inserts never wait; the
    # compact_claim_counts job folds the deltas every minute (workflows/tally.py).
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int  # not a foreign key: the tally follows claims, whatever order tables empty in
    state: str = Field(max_length=20)
    product_code: str = Field(max_length=40)
    n: int  # claims added (or, negative, removed) in this unit, state and product


class ClaimEvent(SQLModel, table=True):
    """Append-only audit trail: one row per event fired on a claim."""

    __tablename__ = "claim_event"
    __table_args__ = (sa.Index("ix_claim_event_claim", "claim_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id")
    event: str = Field(max_length=40)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    version: int  # the claim's version after this event
    actor: str = Field(max_length=100)
    at: datetime = _stamp()
    payload: dict[str, Any] = _json(default_factory=empty_dict)
    reason_code: str | None = Field(default=None, max_length=40)  # reject/return/request_materials


class Notification(SQLModel, table=True):
    """Transactional outbox: written in the transaction of the change that causes it."""

    __table_args__ = (sa.Index("ix_notification_due", "state", "next_try_at"),)

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int | None = Field(default=None, foreign_key="claim.id", index=True)
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    recipient_kind: str = Field(max_length=20)  # "unit" (the unit union) or "worker"
    template: str = Field(max_length=60)
    payload: dict[str, Any] = _json(default_factory=empty_dict)
    channel: str | None = Field(default=None, max_length=20)  # chosen when dispatched
    state: str = Field(default="pending", max_length=10)  # pending, sent, failed, cancelled
    attempts: int = 0
    next_try_at: datetime = _stamp()
    last_error: str | None = Field(default=None, max_length=500)
    # A reminder job writes one message per claim per interval: the key makes a rerun a no-op.
    dedupe_key: str | None = Field(default=None, max_length=120, unique=True)
    created_at: datetime = _stamp()
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Remittance(SQLModel, table=True):
    """Money received from the city office (到账), applied atomically to approved claims."""

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=200, unique=True, index=True)
    received_on: date
    total_amount: int = _fen()  # fen
    recorded_by: str = Field(max_length=100)
    recorded_at: datetime = _stamp()


class RemittanceItem(SQLModel, table=True):
    __tablename__ = "remittance_item"

    id: int | None = Field(default=None, primary_key=True)
    remittance_id: int = Field(foreign_key="remittance.id", index=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    amount: int = _fen()  # fen


class JobRun(SQLModel, table=True):
    """One run of a scheduled job, by the scheduler or by hand."""

    __tablename__ = "job_run"
    __table_args__ = (sa.Index("ix_job_run_job_started", "job", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=60)
    scheduled_for: datetime | None = Field(default=None, sa_type=UTCDateTime)
    started_at: datetime = _stamp()
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str = Field(default="running", max_length=10)  # running, ok, failed
    trigger: str = Field(default="schedule", max_length=10)  # schedule, manual
    runner: str = Field(default="", max_length=200)  # host:pid
    summary: dict[str, Any] = _json(default_factory=empty_dict)


class SchedulerLease(SQLModel, table=True):
    """The active scheduler's heartbeat (and its lock on SQLite, where no advisory lock exists)."""

    __tablename__ = "scheduler_lease"

    name: str = Field(primary_key=True, max_length=40)
    holder: str = Field(max_length=200)
    acquired_at: datetime = _stamp()
    heartbeat_at: datetime = _stamp()


class ClaimCounter(SQLModel, table=True):
    """The last claim number issued per year: LP2026-000123."""

    __tablename__ = "claim_counter"

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last: int = 0


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=100, unique=True, index=True)
    role: str = Field(max_length=20)
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    password_hash: str = Field(max_length=255)
    active: bool = True
    created_at: datetime = _stamp()


class ApiToken(SQLModel, table=True):
    """Bearer tokens, kept as SHA-256 digests so a database dump holds no usable token."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    issued_at: datetime = _stamp()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
