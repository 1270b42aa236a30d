"""Console: a member's page (参保职工), the worker's history across the years: enrolments,
claims with their amounts, and per product and year the cap, used and left (the figure a new
claim's estimate is capped by). Unit staff see their own unit's members only (else 404)."""

from __future__ import annotations

from flask import abort, render_template

from claims.api.members import member_view, visible_members
from claims.models import Member
from claims.runtime import get_runtime, get_session
from claims.web.console import console
from workflows.history import member_history


@console.get("/members/<int:member_id>")
def member_page(member_id: int) -> str:
    """One member: who, which unit, every enrolment and claim, cap used and left per year."""
    session = get_session()
    row = session.execute(visible_members().where(Member.id == member_id)).first()
    if row is None:
        abort(404)
    member, unit_code = row
    return render_template("console/member.html", member=member_view(member, unit_code),
                           history=member_history(session, get_runtime(), member))
