"""Claims walked to `approved` through the real workflow, for payout tests."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlmodel import select

from claims.auth import Actor, system_actor
from claims.db import session_scope
from claims.models import Batch, Claim
from workflows.batch import deliver_batch, seal_weekly_batch
from workflows.transitions import fire

CLERK = Actor(username="clerk", role="clerk")


def approved_claims(app: Flask, county: Any, amounts: list[str], **claim_fields: Any) -> list[dict]:
    """Log, verify, seal, deliver and approve one claim per amount (yuan strings)."""
    claims = [county.claim(**claim_fields) for _ in amounts]
    for claim in claims:
        assert county.fire(claim["claim_no"], "verify").status_code == 200
    runtime = app.extensions["mutualaid"]
    with session_scope(runtime.engine) as session:
        batch = seal_weekly_batch(session, runtime, system_actor("weekly_batch")).batch
        assert batch is not None
        deliver_batch(session, session.get(Batch, batch.id), CLERK)
    with session_scope(runtime.engine) as session:
        for claim, amount in zip(claims, amounts, strict=True):
            row = session.exec(select(Claim).where(Claim.claim_no == claim["claim_no"])).one()
            yuan, _, cents = amount.partition(".")
            fire(session, runtime, row, "approve", CLERK,
                 {"amount": int(yuan) * 100 + int((cents or "0").ljust(2, "0"))})
    return [county.clerk.get(f"/api/v1/claims/{c['claim_no']}").json for c in claims]


def remit(county: Any, claims: list[dict], reference: str = "CITY-2026-001") -> Any:
    """Record the city office's money for these claims, each at its approved amount."""
    total = sum(int(c["approved_amount"].replace(".", "")) for c in claims)
    return county.clerk.post("/api/v1/remittances", {
        "reference": reference, "received_on": county.today.isoformat(),
        "total_amount": f"{total // 100}.{total % 100:02d}",
        "items": [{"claim_no": c["claim_no"], "amount": c["approved_amount"]} for c in claims],
    })
