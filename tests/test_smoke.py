def test_a_clerk_logs_and_verifies_a_claim(county):
    claim = county.claim()
    assert claim["state"] == "logged"
    assert claim["estimate"] == "1250.00"
    assert claim["missing_documents"] == []
    answer = county.fire(claim["claim_no"], "verify")
    assert answer.status_code == 200, answer.json
    assert answer.json["state"] == "ready"


def test_weekly_batch_seals_ready_claims_and_delivery_submits_them(app, county):
    from claims.auth import system_actor
    from claims.db import session_scope
    from workflows.batch import deliver_batch, seal_weekly_batch

    claims = [county.claim() for _ in range(3)]
    for claim in claims[:2]:
        assert county.fire(claim["claim_no"], "verify").status_code == 200
    runtime = app.extensions["mutualaid"]
    with session_scope(runtime.engine) as session:
        result = seal_weekly_batch(session, runtime, system_actor("weekly_batch"))
        assert result.sealed == 2 and result.batch.claim_count == 2
        assert result.batch.total_claimed == 2 * 125000
        batch_no = result.batch.batch_no
    with session_scope(runtime.engine) as session:
        assert seal_weekly_batch(session, runtime, system_actor("weekly_batch")).batch is None
    sealed = county.clerk.get(f"/api/v1/claims/{claims[0]['claim_no']}").json
    assert sealed["state"] == "batched" and sealed["batch_no"] == batch_no
    assert sealed["version"] == claims[0]["version"] + 2
    with session_scope(runtime.engine) as session:
        from sqlmodel import select

        from claims.models import Batch

        batch = session.exec(select(Batch)).one()
        assert deliver_batch(session, batch, system_actor("transmission")) == 2
    trail = county.clerk.get(f"/api/v1/claims/{claims[1]['claim_no']}/events").json
    assert [e["event"] for e in trail] == ["log", "verify", "seal", "deliver"]
    assert [e["version"] for e in trail] == [1, 2, 3, 4]


def test_a_second_lump_sum_claim_in_flight_cannot_be_verified(county):
    from datetime import timedelta

    member = county.member()
    county.enrol(member, "critical_illness", start=county.today - timedelta(days=400))
    docs = ["claim_form", "id_card", "diagnosis_certificate", "pathology_report"]
    first = county.claim(member, "critical_illness", documents=docs,
                         incident_date=(county.today - timedelta(days=40)).isoformat())
    second = county.claim(member, "critical_illness", documents=docs,
                          incident_date=(county.today - timedelta(days=20)).isoformat())
    assert county.fire(first["claim_no"], "verify").status_code == 200
    refused = county.fire(second["claim_no"], "verify")
    assert refused.status_code == 422
    assert [e["code"] for e in refused.json["errors"]] == ["already_claimed"]


def test_an_unknown_filter_answers_422_instead_of_listing_everything(county):
    county.claim()
    answer = county.clerk.get("/api/v1/claims?stat=logged")
    assert answer.status_code == 422
    assert answer.json["errors"][0]["field"] == "stat"
    assert county.clerk.get("/api/v1/claims?state=logged&page=1&page_size=5").status_code == 200
