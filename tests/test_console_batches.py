"""Console batches: run the weekly batch, the batch page, manifest, deliver, decisions sheet."""

from __future__ import annotations

from io import BytesIO

import openpyxl
from conftest import County
from flask.testing import FlaskClient
from test_console import csrf_token, post_form, sign_in
from test_decisions import decisions_sheet, row, snapshot


def run_batch(client: FlaskClient) -> str:
    """Press "run the weekly batch now": the batch number it landed on."""
    answer = post_form(client, "/console/batches/run", {})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return answer.headers["Location"].rsplit("/", 1)[-1]


def upload(client: FlaskClient, batch_no: str, data: bytes, name: str = "审核结果.xlsx") -> object:
    return client.post(f"/console/batches/{batch_no}/decisions", data={
        "csrf_token": csrf_token(client, "/console/"), "file": (BytesIO(data), name)},
        content_type="multipart/form-data")


def test_running_the_batch_from_the_list_seals_the_ready_claims(client: FlaskClient,
                                                                county: County) -> None:
    claim_nos = county.ready_claims(2)
    sign_in(client, county)
    listing = client.get("/console/batches").get_data(as_text=True)
    assert "待报送的理赔：2 件" in listing and 'id="run-batch"' in listing
    batch_no = run_batch(client)
    page = client.get(f"/console/batches/{batch_no}").get_data(as_text=True)
    assert "已装批 2 件理赔" in page
    assert all(no in page for no in claim_nos)
    assert 'id="totals-by-state"' in page and "2,500.00" in page  # two estimates of 1250.00
    listing = client.get("/console/batches").get_data(as_text=True)
    assert batch_no in listing and "已装批 2" in listing and "未报送" in listing
    nothing = post_form(client, "/console/batches/run", {})
    assert nothing.headers["Location"] == "/console/batches"


def test_the_manifest_downloads_from_the_batch_page(client: FlaskClient, county: County) -> None:
    county.ready_claims(1)
    sign_in(client, county)
    batch_no = run_batch(client)
    with client.get(f"/console/batches/{batch_no}/manifest.xlsx") as xlsx:
        assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
        book = openpyxl.load_workbook(BytesIO(xlsx.data), read_only=True)
        assert "报送清单" in book.sheetnames
        book.close()
    with client.get(f"/console/batches/{batch_no}/manifest.cover") as cover:
        assert cover.status_code == 200 and "经办人" in cover.get_data(as_text=True)
        assert "style-src 'unsafe-inline'" in cover.headers["Content-Security-Policy"]
    assert client.get(f"/console/batches/{batch_no}/manifest.pdf").status_code == 404


def test_deliver_then_a_bad_sheet_shows_each_refused_row_and_applies_nothing(
        app, client: FlaskClient, county: County) -> None:
    claim_nos = county.ready_claims(3)
    sign_in(client, county)
    batch_no = run_batch(client)
    answer = post_form(client, f"/console/batches/{batch_no}/deliver", {})
    assert answer.status_code == 303
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "已报送市总" in page and 'id="decisions"' in page and 'id="deliver"' not in page
    before = snapshot(app)
    bad = decisions_sheet([row(claim_nos[0], "核准", 1200.0), row(claim_nos[1], "核准"),
                           row("LP1999-000001", "退回", reason="缺发票")])
    answer = upload(client, batch_no, bad)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "未记录任何审核结果" in html
    # The city's rows 4 and 5 (title, header, then the claims from row 3).
    assert "<td>4</td><td>核准金额</td>" in html and "<td>5</td><td>理赔编号</td>" in html
    assert snapshot(app) == before
    above = float(county.clerk.get(f"/api/v1/claims/{claim_nos[0]}").json["estimate"]) + 100
    good = decisions_sheet([row(claim_nos[0], "核准", above),
                            row(claim_nos[1], "不予赔付", reason="等待期内"),
                            row(claim_nos[2], "退回", reason="缺出院小结")])
    answer = upload(client, batch_no, good)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert '<p class="flash flash-message" role="status">已记录 3 条市总审核结果' in page
    # Above the estimate: recorded, and flagged in a warning's colours, not success's.
    warning = '<p class="flash flash-warning" role="alert">核准金额高于估算，请复核：'
    assert warning + claim_nos[0] in page
    assert county.clerk.get(f"/api/v1/claims/{claim_nos[0]}").json["state"] == "approved"


def test_a_file_that_is_no_workbook_is_refused_beside_the_field(client: FlaskClient,
                                                                county: County) -> None:
    county.ready_claims(1)
    sign_in(client, county)
    batch_no = run_batch(client)
    post_form(client, f"/console/batches/{batch_no}/deliver", {})
    answer = upload(client, batch_no, b"not a workbook", "x.xlsx")
    assert answer.status_code == 422 and "整个文件" in answer.get_data(as_text=True)
    answer = upload(client, batch_no, b"a,b", "x.csv")
    assert answer.status_code == 422


def test_batch_forms_refuse_a_post_without_the_csrf_token(client: FlaskClient,
                                                          county: County) -> None:
    county.ready_claims(1)
    sign_in(client, county)
    assert client.post("/console/batches/run").status_code == 400
    assert county.clerk.get("/api/v1/batches").json == []
    batch_no = run_batch(client)
    assert client.post(f"/console/batches/{batch_no}/deliver").status_code == 400
    assert client.post(f"/console/batches/{batch_no}/decisions").status_code == 400
    assert county.clerk.get(f"/api/v1/batches/{batch_no}").json["delivered_at"] is None


def test_unit_staff_may_not_open_the_batch_pages(client: FlaskClient, county: County) -> None:
    claim = county.claim()
    county.fire(claim["claim_no"], "verify")
    county.unit_staff(claim["unit_code"])
    sign_in(client, county, f"staff-{claim['unit_code']}")
    assert client.get("/console/batches").status_code == 403
    assert post_form(client, "/console/batches/run", {}).status_code == 403
    assert "/console/batches" not in client.get("/console/").get_data(as_text=True)
    assert county.clerk.get(f"/api/v1/claims/{claim['claim_no']}").json["state"] == "ready"
