def test_a_clerk_logs_and_verifies_a_claim(county):
    claim = county.claim()
    assert claim["state"] == "logged"
    assert claim["estimate"] == "1250.00"
    assert claim["missing_documents"] == []
    answer = county.fire(claim["claim_no"], "verify")
    assert answer.status_code == 200, answer.json
    assert answer.json["state"] == "ready"
