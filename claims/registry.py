"""Units, members and enrolments: the county's register of who is covered for what."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from claims.idcard import parse_id_number
from claims.models import Enrolment, Member, Unit
from claims.rules import enrolment_problems
from config.catalogue import Catalogue, Product
from workflows.errors import Conflict, FieldError, RuleFailed


def unit_by_code(session: Session, code: str) -> Unit | None:
    return session.exec(select(Unit).where(Unit.code == code)).first()


def member_by_id_number(session: Session, id_number: str) -> Member | None:
    return session.exec(select(Member).where(Member.id_number == id_number)).first()


def _flush_unique(session: Session, conflict: Conflict) -> None:
    """Flush, turning a unique-constraint race into the same 409 the pre-check gives."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise conflict from None


def create_unit(session: Session, fields: dict[str, Any]) -> Unit:
    """Register a work unit; its code is unique."""
    duplicate = Conflict("A unit with this code exists already.",
                         [FieldError("code", "duplicate", "This unit code is taken.")],
                         code="duplicate_unit")
    if unit_by_code(session, fields["code"]):
        raise duplicate
    unit = Unit(**fields)
    session.add(unit)
    _flush_unique(session, duplicate)
    return unit


def register_member(session: Session, *, unit_code: str, name: str, id_number: str,
                    phone: str | None) -> Member:
    """Register an insured worker; birth date and sex come from the ID number."""
    unit = unit_by_code(session, unit_code)
    if unit is None:
        raise RuleFailed("Unknown unit.", [FieldError("unit_code", "unknown_unit",
                                                      "No unit has this code.")])
    parsed = parse_id_number(id_number)
    duplicate = Conflict("A member with this ID number exists already.",
                         [FieldError("id_number", "duplicate",
                                     "This ID number is registered already.")],
                         code="duplicate_member")
    if member_by_id_number(session, parsed.number):
        raise duplicate
    member = Member(unit_id=unit.id, name=name, id_number=parsed.number,
                    birth_date=parsed.birth_date, sex=parsed.sex, phone=phone)
    session.add(member)
    _flush_unique(session, duplicate)
    return member


def product_or_422(catalogue: Catalogue, code: str, field: str = "product_code") -> Product:
    product = catalogue.get(code)
    if product is None:
        raise RuleFailed("Unknown product.", [FieldError(field, "unknown_product",
                                                         "No product has this code.")])
    return product


def member_or_422(session: Session, id_number: str, field: str = "id_number") -> Member:
    member = member_by_id_number(session, id_number)
    if member is None:
        raise RuleFailed("Unknown member.", [FieldError(field, "unknown_member",
                                                        "No member has this ID number.")])
    return member


def enrol(session: Session, catalogue: Catalogue, *, id_number: str, product_code: str,
          shares: int, start_date: date, end_date: date) -> tuple[Enrolment, list[str]]:
    """Enrol a member in a product; refuses overlaps (409) and answers warnings to show."""
    member = member_by_id_number(session, id_number)
    product = catalogue.get(product_code)
    if member is None or product is None:
        unknown = []
        if member is None:
            unknown.append(FieldError("id_number", "unknown_member",
                                      "No member has this ID number."))
        if product is None:
            unknown.append(FieldError("product_code", "unknown_product",
                                      "No product has this code."))
        raise RuleFailed("Unknown member or product.", unknown)
    problems = enrolment_problems(product, birth_date=member.birth_date, sex=member.sex,
                                  start_date=start_date, end_date=end_date, shares=shares)
    if problems:
        raise RuleFailed("The enrolment breaks a rule.",
                         [FieldError(p.field, p.code, p.message) for p in problems])
    # Lock the member's row so two overlapping enrolments cannot both pass the check.
    session.exec(select(Member.id).where(Member.id == member.id).with_for_update()).first()
    overlapping = session.exec(
        select(Enrolment).where(
            Enrolment.member_id == member.id,
            Enrolment.product_code == product.code,
            Enrolment.start_date <= end_date,
            Enrolment.end_date >= start_date,
        )
    ).first()
    if overlapping is not None:
        raise Conflict(
            "The member is already enrolled in this product for part of these dates.",
            [FieldError("start_date", "overlapping_enrolment",
                        f"Overlaps the enrolment {overlapping.start_date} to "
                        f"{overlapping.end_date}.")],
            code="overlapping_enrolment",
        )
    enrolment = Enrolment(member_id=member.id, product_code=product.code, shares=shares,
                          start_date=start_date, end_date=end_date)
    session.add(enrolment)
    session.flush()
    return enrolment, enrolment_warnings(session, product, member.unit_id, start_date)


def enrolment_rate(session: Session, product_code: str, unit_id: int, on: date) -> tuple[int, int]:
    """(members of the unit enrolled in the product on `on`, the unit's employee count)."""
    enrolled = session.scalar(
        select(sa.func.count(sa.distinct(Enrolment.member_id)))
        .join(Member, Member.id == Enrolment.member_id)
        .where(Member.unit_id == unit_id, Enrolment.product_code == product_code,
               Enrolment.start_date <= on, Enrolment.end_date >= on)
    ) or 0
    employees = session.scalar(select(Unit.employee_count).where(Unit.id == unit_id)) or 0
    return int(enrolled), int(employees)


def enrolment_warnings(session: Session, product: Product, unit_id: int, on: date) -> list[str]:
    """A product may ask that a unit enrol a share of its staff (all of it in small units)."""
    if product.min_enrolment_share <= 0:
        return []
    enrolled, employees = enrolment_rate(session, product.code, unit_id, on)
    if employees <= 0:
        return []
    wanted = Decimal(1) if employees < product.small_unit_size else product.min_enrolment_share
    if Decimal(enrolled) / Decimal(employees) >= wanted:
        return []
    return [f"本单位{product.name}参保 {enrolled}/{employees} 人，低于要求的 {wanted:.0%}。"]
