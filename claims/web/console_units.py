"""Console: units (单位) and their members (参保职工). Lists with the enrolment rate, a unit's
page with its members (ID numbers masked), and the forms to add a unit and a member through
claims/registry.py. Unit staff see their own unit; adding is for county staff.
"""

from __future__ import annotations

from typing import Any

import flask
import marshmallow as ma
import sqlalchemy as sa
from flask import g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlmodel import col

from claims.models import Enrolment, Member, Unit
from claims.registry import create_unit, register_member
from claims.runtime import get_runtime, get_session
from claims.schemas.members import MemberInSchema
from claims.schemas.units import UnitInSchema
from claims.web.console import console
from claims.web.console_kit import paged, schema_field_errors, staff_only
from claims.web.forms import Errors, domain_errors
from workflows.errors import DomainError

UNIT_FIELDS = ("code", "name", "area", "union_contact", "union_phone", "union_email",
               "employee_count")
MEMBER_FIELDS = ("unit_code", "name", "phone")  # the ID number is never written back


def _scoped_units(query: sa.Select[Any]) -> sa.Select[Any]:
    actor = g.actor
    return query.where(Unit.id == actor.unit_id) if actor.is_unit_staff else query


def _insured_on(day: Any) -> sa.Subquery:
    """Members covered on `day` by any product, counted per unit."""
    covered = (sa.select(Member.unit_id, sa.func.count(sa.distinct(Enrolment.member_id))
                         .label("insured"))
               .join(Member, col(Member.id) == Enrolment.member_id)
               .where(Enrolment.start_date <= day, Enrolment.end_date >= day)
               .group_by(Member.unit_id))
    return covered.subquery()


def _units_query(day: Any) -> sa.Select[Any]:
    insured = _insured_on(day)
    members = (sa.select(Member.unit_id, sa.func.count().label("members"))
               .group_by(Member.unit_id).subquery())
    return _scoped_units(
        sa.select(Unit, sa.func.coalesce(members.c.members, 0),
                  sa.func.coalesce(insured.c.insured, 0))
        .outerjoin(members, members.c.unit_id == Unit.id)
        .outerjoin(insured, insured.c.unit_id == Unit.id))


def _rate(insured: int, employees: int) -> str:
    return f"{insured * 100 / employees:.1f}%" if employees else "—"


@console.get("/units")
def units() -> str:
    """Units by code: area, union contact, members insured today and the enrolment rate."""
    q = request.args.get("q", "").strip()[:40]
    area = request.args.get("area", "").strip()[:200]
    query = _units_query(get_runtime().today())
    if q:
        query = query.where(sa.or_(col(Unit.code).contains(q, autoescape=True),
                                   col(Unit.name).contains(q, autoescape=True)))
    if area:
        query = query.where(Unit.area == area)
    page = paged(query.order_by(col(Unit.code)), {"q": q, "area": area})
    rows = [{"unit": unit, "members": int(members), "insured": int(insured),
             "rate": _rate(int(insured), unit.employee_count)}
            for unit, members, insured in page.rows]
    return render_template("console/units.html", page=page, rows=rows, q=q, area=area)


@console.get("/units/<code>")
def unit_page(code: str) -> Any:
    """One unit and its members (ID numbers masked), a page at a time; its code in any case."""
    code = code.strip().upper()
    row = get_session().execute(
        _units_query(get_runtime().today()).where(Unit.code == code)).first()
    if row is None:
        flask.abort(404)
    unit, members, insured = row
    today = get_runtime().today()
    covered = (sa.select(Enrolment.member_id, sa.func.count().label("products"))
               .where(Enrolment.start_date <= today, Enrolment.end_date >= today)
               .group_by(Enrolment.member_id).subquery())
    listed = paged(sa.select(Member, sa.func.coalesce(covered.c.products, 0))
                   .outerjoin(covered, covered.c.member_id == Member.id)
                   .where(Member.unit_id == unit.id).order_by(col(Member.id)))
    return render_template("console/unit.html", unit=unit, members=int(members),
                           insured=int(insured), rate=_rate(int(insured), unit.employee_count),
                           page=listed, member_rows=listed.rows)


@console.route("/units/new", methods=["GET", "POST"])
@staff_only
def new_unit() -> Any:
    """Register a unit (its code is unique)."""
    errors: Errors = {}
    status = 422
    typed = {k: request.form.get(k, "").strip() for k in UNIT_FIELDS}
    if request.method == "POST":
        body: dict[str, Any] = {k: v for k, v in typed.items() if v}
        if "employee_count" in body:
            count = body["employee_count"]
            body["employee_count"] = int(count) if count.isdigit() else count
        db = get_session()
        try:
            unit = create_unit(db, UnitInSchema().load(body))
        except ma.ValidationError as error:
            errors = schema_field_errors(error)
            if "employee_count" in errors and not typed["employee_count"].isdigit():
                # -3 or 3.5: what to write instead, not only that it is out of range
                errors["employee_count"] = [_("请填写 0 或正整数")]
        except DomainError as error:
            db.rollback()
            errors, status = domain_errors(error), error.status
        else:
            code = unit.code
            db.commit()
            flask.flash(_("已登记单位 %(code)s。", code=code))
            return redirect(url_for("console.unit_page", code=code), 303)
    return render_template("console/unit_form.html", errors=errors,
                           typed=typed), status if errors else 200


@console.route("/members/new", methods=["GET", "POST"])
@staff_only
def new_member() -> Any:
    """Register an insured worker in a unit; birth date and sex come from the ID number."""
    errors: Errors = {}
    status = 422
    typed = {k: request.values.get(k, "").strip() for k in MEMBER_FIELDS}
    if request.method == "POST":
        body = {k: v for k, v in typed.items() if v}
        id_number = request.form.get("id_number", "").strip()
        if id_number:
            body["id_number"] = id_number
        db = get_session()
        try:
            fields = {"phone": None, **MemberInSchema().load(body)}  # the code upper-cased
            member = register_member(db, **fields)
        except ma.ValidationError as error:
            errors = schema_field_errors(error)
        except DomainError as error:
            db.rollback()
            errors, status = domain_errors(error), error.status
        else:
            name, unit_code = member.name, fields["unit_code"]
            db.commit()
            flask.flash(_("已登记参保职工 %(name)s。", name=name))
            return redirect(url_for("console.unit_page", code=unit_code), 303)
    return render_template("console/member_form.html", errors=errors,
                           typed=typed), status if errors else 200
