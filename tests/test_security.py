"""Issue 7 security: sign-in lockout, revocable tokens, secure headers, and no ID number,
token or password in any log line of a full claim walk served over real HTTP.

Also covered elsewhere: argon2id hashes and expired/revoked tokens answering 401
(test_api_registry.py), the role x endpoint matrix and the append-only audit trail
(test_role_matrix.py)."""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import PASSWORD, new_id_number
from test_console import post_form
from test_console import sign_in as console_sign_in

from claims.auth import create_user
from claims.db import session_scope

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(client: Any, username: str, password: str, address: str = "127.0.0.1") -> Any:
    return client.post("/api/v1/auth/token", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def test_five_wrong_passwords_lock_the_username_even_for_the_right_one(county, client):
    county.clerk  # noqa: B018 - creates the user
    for _ in range(5):
        assert sign_in(client, "clerk", "wrong password").status_code == 401
    locked = sign_in(client, "clerk", PASSWORD)
    assert locked.status_code == 429 and locked.is_json
    assert locked.json["code"] == "locked"
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert locked.json["retry_after"] == int(locked.headers["Retry-After"])
    county.user("other", "clerk")
    assert sign_in(client, "other", PASSWORD).status_code == 200  # only that username


def test_the_lockout_store_keeps_no_username_as_typed(app, county, client):
    # People type their phone number (or ID number: refused, 422) into the username box; the
    # store is a file on the host.
    phone = "13912345678"
    for _ in range(5):
        assert sign_in(client, phone, "wrong password").status_code == 401
    assert sign_in(client, phone, "wrong password").status_code == 429  # still counted
    store = app.extensions["mutualaid"].settings.instance_path / "ratelimit.sqlite3"
    kept = store.read_bytes() + b"".join(
        path.read_bytes() for path in store.parent.glob("ratelimit.sqlite3-*"))
    assert kept and phone.encode() not in kept
    refused = sign_in(client, new_id_number(), "wrong password")
    assert refused.status_code == 422 and refused.json["errors"][0]["code"] == "id_number_in_text"


def test_a_right_password_clears_the_count_of_wrong_ones(county, client):
    county.clerk  # noqa: B018
    for _ in range(4):
        assert sign_in(client, "clerk", "wrong password").status_code == 401
    assert sign_in(client, "clerk", PASSWORD).status_code == 200
    for _ in range(4):
        assert sign_in(client, "clerk", "wrong password").status_code == 401
    assert sign_in(client, "clerk", PASSWORD).status_code == 200


def test_many_wrong_passwords_from_one_address_throttle_that_address(app, county, client):
    app.extensions["mutualaid"].settings.login_max_failures_per_address = 3
    county.clerk  # noqa: B018
    for name in ("ann", "bob", "cy"):
        assert sign_in(client, name, "guess", address="10.0.0.9").status_code == 401
    throttled = sign_in(client, "clerk", PASSWORD, address="10.0.0.9")
    assert throttled.status_code == 429 and throttled.json["code"] == "too_many_attempts"
    assert int(throttled.headers["Retry-After"]) > 0
    assert sign_in(client, "clerk", PASSWORD, address="10.0.0.10").status_code == 200


def test_the_console_sign_in_shares_the_lockout(county, client):
    county.clerk  # noqa: B018

    def console_sign_in(password: str) -> Any:
        form = client.get("/console/login").get_data(as_text=True)
        token = _CSRF.search(form)
        assert token
        return client.post("/console/login", data={
            "username": "clerk", "password": password, "csrf_token": token.group(1)})

    for _ in range(3):
        assert console_sign_in("wrong password").status_code == 401
    for _ in range(2):
        assert sign_in(client, "clerk", "wrong password").status_code == 401
    page = console_sign_in(PASSWORD)
    assert page.status_code == 429 and int(page.headers["Retry-After"]) > 0
    assert "密码错误次数过多" in page.get_data(as_text=True)
    assert sign_in(client, "clerk", PASSWORD).status_code == 429


def test_delete_token_revokes_the_callers_token_only(county, client):
    county.clerk  # noqa: B018
    first = sign_in(client, "clerk", PASSWORD).json["access_token"]
    second = sign_in(client, "clerk", PASSWORD).json["access_token"]
    bearer = {"Authorization": f"Bearer {first}"}
    assert client.get("/api/v1/products", headers=bearer).status_code == 200
    answer = client.delete("/api/v1/auth/token", headers=bearer)
    assert answer.status_code == 204
    refused = client.get("/api/v1/products", headers=bearer)
    assert refused.status_code == 401 and refused.json["code"] == "unauthorized"
    assert client.delete("/api/v1/auth/token", headers=bearer).status_code == 401
    assert client.get("/api/v1/products",
                      headers={"Authorization": f"Bearer {second}"}).status_code == 200
    assert client.delete("/api/v1/auth/token").status_code == 401


def test_signing_out_of_the_console_ends_the_sign_in_on_the_server(county, client):
    console_sign_in(client, county)
    copied = client.get_cookie("session").value  # as if taken from this browser
    assert client.get("/console/claims").status_code == 200
    assert post_form(client, "/console/logout", {}).status_code == 302
    client.set_cookie("session", copied)
    answer = client.get("/console/claims")
    assert answer.status_code == 302 and "/console/login" in answer.headers["Location"]


def test_the_console_cookie_holds_no_bearer_token_for_the_api(app, county, client):
    """Flask's session cookie is signed, not secret: whoever reads it must not find a token
    the API takes."""
    console_sign_in(client, county)
    cookie = client.get_cookie("session").value
    serializer = app.session_interface.get_signing_serializer(app)
    kept = [value for value in serializer.loads(cookie).values() if isinstance(value, str)]
    assert kept, "the sign-in is in the session"
    for value in kept:
        answer = client.get("/api/v1/products", headers={"Authorization": f"Bearer {value}"})
        assert answer.status_code == 401, value[:8]
    assert client.get("/console/claims").status_code == 200  # and the console still knows it


def test_signing_in_again_over_a_sign_in_ends_the_earlier_one(county, client):
    console_sign_in(client, county)
    earlier = client.get_cookie("session").value
    console_sign_in(client, county)  # the same browser, the form again
    assert client.get("/console/claims").status_code == 200
    client.set_cookie("session", earlier)
    assert client.get("/console/claims").status_code == 302


def test_a_new_password_or_a_disabled_user_ends_every_sign_in(county, client, runner):
    county.clerk  # noqa: B018
    token = sign_in(client, "clerk", PASSWORD).json["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    console_sign_in(client, county)
    result = runner.invoke(args=["users", "set-password", "clerk", "--password", "new-secret-1"])
    assert result.exit_code == 0, result.output
    assert client.get("/api/v1/products", headers=bearer).status_code == 401
    assert client.get("/console/claims").status_code == 302
    assert sign_in(client, "clerk", PASSWORD).status_code == 401
    fresh = sign_in(client, "clerk", "new-secret-1").json["access_token"]
    assert runner.invoke(args=["users", "disable", "clerk"]).exit_code == 0
    assert client.get("/api/v1/products",
                      headers={"Authorization": f"Bearer {fresh}"}).status_code == 401
    assert sign_in(client, "clerk", "new-secret-1").status_code == 401
    assert runner.invoke(args=["users", "enable", "clerk"]).exit_code == 0
    assert sign_in(client, "clerk", "new-secret-1").status_code == 200
    refused = runner.invoke(args=["users", "disable", "nobody"])
    assert refused.exit_code != 0 and "no user nobody" in refused.output


def test_tokens_ended_a_month_ago_are_pruned_and_live_ones_kept(app, county, client):
    county.clerk  # noqa: B018
    tokens = [sign_in(client, "clerk", PASSWORD).json["access_token"] for _ in range(3)]
    client.delete("/api/v1/auth/token", headers={"Authorization": f"Bearer {tokens[1]}"})
    engine = app.extensions["mutualaid"].engine
    long_ago = datetime.now(UTC) - timedelta(days=31)
    with engine.begin() as connection:  # the first expired, the second revoked, a month ago
        ids = connection.execute(sa.text("SELECT id FROM api_token ORDER BY id")).scalars().all()
        connection.execute(sa.text("UPDATE api_token SET expires_at = :t WHERE id = :id"),
                           {"t": long_ago, "id": ids[-3]})
        connection.execute(sa.text("UPDATE api_token SET revoked_at = :t WHERE id = :id"),
                           {"t": long_ago, "id": ids[-2]})
    run = county.clerk.post("/api/v1/jobs/prune_tokens/runs", {})
    assert run.status_code == 200 and run.json["summary"] == {"pruned": 2}, run.json
    live = {"Authorization": f"Bearer {tokens[2]}"}
    assert client.get("/api/v1/products", headers=live).status_code == 200
    again = county.clerk.post("/api/v1/jobs/prune_tokens/runs", {})
    assert again.json["summary"] == {"pruned": 0}


def test_the_console_cookie_is_secure_when_the_site_is_served_over_https(app, county, client):
    app.config["SESSION_COOKIE_SECURE"] = True  # MUTUALAID_SECURE_COOKIES=1
    console_sign_in(client, county)
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.secure


def test_api_answers_and_pages_carry_secure_headers(county, client):
    answers = {
        "api": county.clerk.get("/api/v1/products"),
        "error": client.get("/api/v1/claims"),
        "status page": client.get("/status"),
        "console": client.get("/console/login"),
        "api docs": client.get("/api/v1/docs"),
    }
    for name, answer in answers.items():
        assert answer.headers["X-Content-Type-Options"] == "nosniff", name
        assert answer.headers["X-Frame-Options"] == "DENY", name
        assert answer.headers["Referrer-Policy"], name
        csp = answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp, name
    assert answers["api"].headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert answers["api"].headers["Cache-Control"] == "no-store"  # names workers and claims
    assert answers["error"].headers["Cache-Control"] == "no-store"
    assert "unsafe-inline" not in answers["status page"].headers["Content-Security-Policy"]


class Http:
    """JSON over real HTTP to the live server, as an outside client."""

    def __init__(self, base: str) -> None:
        self.base, self.token = base, ""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                raw = answer.read()
                return answer.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def walk_a_claim_over_http(app: Any, live_server: Any) -> dict[str, str]:
    """Log, verify, batch, decide, remit, notify and collect a claim; the secrets it used."""
    with session_scope(app.extensions["mutualaid"].engine) as session:
        create_user(session, username="clerk", role="clerk", password=PASSWORD)
    http = Http(live_server.url)
    status, body = http.call("POST", "/api/v1/auth/token",
                             {"username": "clerk", "password": PASSWORD})
    assert status == 200
    http.token = token = body["access_token"]
    id_number, stranger = new_id_number(), new_id_number()
    today = app.extensions["mutualaid"].today()
    incident = today - timedelta(days=20)
    steps: list[tuple[str, str, Any]] = [
        ("POST", "/api/v1/units", {"code": "U900", "name": "单位", "area": "城区",
                                   "union_contact": "王芳", "union_phone": "0571-0000000",
                                   "union_email": "u@example.org", "employee_count": 50}),
        ("POST", "/api/v1/members", {"unit_code": "U900", "name": "张伟",
                                     "id_number": id_number, "phone": "13800000000"}),
        ("POST", "/api/v1/members", {"unit_code": "U900", "name": "李四",
                                     "id_number": id_number[:-1] + "0" if id_number[-1] != "0"
                                     else id_number[:-1] + "1", "phone": None}),
        ("POST", "/api/v1/enrolments", {
            "id_number": id_number, "product_code": "inpatient", "shares": 1,
            "start_date": (today - timedelta(days=365)).isoformat(),
            "end_date": (today + timedelta(days=365)).isoformat()}),
    ]
    for method, path, body in steps:
        assert http.call(method, path, body)[0] in (201, 422)
    status, claim = http.call("POST", "/api/v1/claims", {
        "id_number": id_number, "product_code": "inpatient", "cause": "illness",
        "incident_date": incident.isoformat(), "admission_date": incident.isoformat(),
        "discharge_date": (incident + timedelta(days=7)).isoformat(),
        "hospital": "县人民医院", "diagnosis": "肺炎", "total_expense": "8000.00",
        "insurance_paid": "4000.00", "self_paid": "3000.00",
        "documents": ["claim_form", "id_card", "invoice", "settlement_sheet",
                      "discharge_summary"]})
    assert status == 201, claim
    claim_no = claim["claim_no"]
    events = f"/api/v1/claims/{claim_no}/events"
    assert http.call("POST", events, {"event": "verify"})[0] == 200
    status, batch = http.call("POST", "/api/v1/batches", {})
    assert status == 201, batch
    batch_no = batch["batch_no"]
    assert http.call("POST", f"/api/v1/batches/{batch_no}/events", {"event": "deliver"})[0] == 200
    assert http.call("POST", f"/api/v1/batches/{batch_no}/decisions", {"decisions": [
        {"claim_no": claim_no, "outcome": "approved", "approved_amount": "1000.00"}]})[0] == 200
    assert http.call("POST", "/api/v1/remittances", {
        "reference": "CITY-LOG-1", "received_on": today.isoformat(), "total_amount": "1000.00",
        "items": [{"claim_no": claim_no, "amount": "1000.00"}]})[0] == 201
    assert http.call("POST", "/api/v1/jobs/dispatch_notifications/runs", {})[0] == 200
    assert http.call("POST", events, {"event": "collect", "id_number": stranger,
                                      "amount": "1000.00", "receipt_no": "R-1"})[0] == 422
    status, collected = http.call("POST", events, {
        "event": "collect", "id_number": id_number, "amount": "1000.00", "receipt_no": "R-1"})
    assert status == 200 and collected["state"] == "collected", collected
    # The worker's check, a wrong guess, and careless clients putting secrets in URLs.
    http.token = ""
    assert http.call("POST", "/api/v1/status", {"id_number": id_number, "name": "张伟"})[0] == 200
    assert http.call("POST", "/api/v1/status", {"id_number": stranger, "name": "张伟"})[0] == 404
    assert http.call("GET", f"/api/v1/members?name={id_number}&access_token={token}")[0] == 401
    # An ID number as a username or a name is refused (422 id_number_in_text): still logged.
    assert http.call("POST", "/api/v1/auth/token",
                     {"username": id_number, "password": PASSWORD})[0] == 422
    http.token = token
    assert http.call("GET", f"/api/v1/members?name={id_number}")[0] == 422
    assert http.call("DELETE", "/api/v1/auth/token")[0] == 204
    return {"ID number": id_number, "other ID number": stranger, "token": token,
            "password": PASSWORD}


def test_no_id_number_token_or_password_in_any_log_line_of_a_full_walk(
        app, live_server, capfd):
    # Everything at DEBUG, SQLAlchemy's statements and their parameters too (it keeps its
    # own logger at WARNING unless told).
    loggers = [logging.getLogger(), logging.getLogger("sqlalchemy.engine")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    try:
        secrets = walk_a_claim_over_http(app, live_server)
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert any('"path": "/api/v1/claims/<string:claim_no>/events"' in line for line in lines)
    assert any("werkzeug" in line and "/api/v1/members?name=" in line for line in lines)
    assert any("sqlalchemy.engine" in line for line in lines), "DEBUG SQL lines were captured"
    leaks = [f"{what}: {line[:200]}" for line in lines for what, secret in secrets.items()
             if secret in line]
    assert not leaks, "\n".join(leaks[:10])
    for line in lines:
        json.loads(line)  # every line one JSON object (MUTUALAID_LOG_FORMAT defaults to json)


@pytest.mark.parametrize("line", [
    "GET /api/v1/members?name={id} HTTP/1.1",
    "parameters: ('{id}', 3)",
    "Authorization: Bearer abc.DEF-123_x",
])
def test_the_log_filter_masks_id_numbers_and_tokens_whatever_logs_them(line):
    from claims.logs import mask_secrets

    id_number = new_id_number()
    masked = mask_secrets(line.format(id=id_number))
    assert id_number not in masked and "abc.DEF-123_x" not in masked
    if "{id}" in line:
        assert f"{id_number[:6]}********{id_number[-4:]}" in masked


FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


@pytest.mark.parametrize("written", [
    lambda n: n.translate(FULL_WIDTH),
    lambda n: f"{n[:6]} {n[6:14]} {n[14:]}",
    lambda n: f"{n[:6]}-{n[6:14]}-{n[14:]}",
], ids=["full-width", "spaced", "hyphenated"])
def test_the_log_filter_masks_an_id_number_however_it_is_written(written):
    # The app reads all of these as the number (a sign-in with one as the username is logged).
    from claims.logs import mask_secrets

    id_number = new_id_number()
    masked = mask_secrets(f"sign-in failed user='{written(id_number)}'")
    assert f"user='{id_number[:6]}********{id_number[-4:]}'" == masked.split(" ", 2)[2]
    digits = "".join(c for c in masked if c.isdigit())
    assert id_number[6:14] not in digits and id_number[6:14].translate(FULL_WIDTH) not in masked


@pytest.mark.parametrize("field", ["reason", "proxy_reference", "place"])
def test_free_text_holding_an_id_number_is_refused_and_changes_nothing(county, field):
    # Free text is shown unmasked to the unit union, on the status page and in claim views.
    other = county.member()["id_number"]
    claim_no = county.claim()["claim_no"]
    before = county.clerk.get(f"/api/v1/claims/{claim_no}").json
    text = f"复印件为{other[:6]} {other[6:14]} {other[14:]}"
    event = {"reason": "request_materials", "proxy_reference": "collect",
             "place": "schedule_onsite"}[field]
    answer = county.fire(claim_no, event, **{field: text})
    assert answer.status_code == 422
    assert {(e["field"], e["code"]) for e in answer.json["errors"]} >= {
        (field, "id_number_in_text")}
    assert county.clerk.get(f"/api/v1/claims/{claim_no}").json == before
    hospital = county.clerk.post("/api/v1/claims", county.claim_body(
        county.member(), hospital=f"县医院 {other.translate(FULL_WIDTH)}"))
    assert [(e["field"], e["code"]) for e in hospital.json["errors"]] == [
        ("hospital", "id_number_in_text")]
