"""The status check reads what a phone types: full-width characters, Chinese dashes, a claim
number without its hyphen or prefix, a whole ID number in the last-six box, a name's middle dot."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import County
from flask.testing import FlaskClient
from test_status_api import ask, by_claim, enrolled

from claims.api.status import claim_no_key
from claims.schemas.fields import normal_name
from claims.schemas.status import StatusQuerySchema, normal_claim_no


def phone_typed(claim_no: str) -> list[str]:
    """The ways a phone sends LP2026-000098: any width, case, dash and spacing; no hyphen; no LP."""
    prefix, digits = claim_no[:6], claim_no[7:]  # LP2026, 000098
    year = prefix[2:]
    wide = "".join(chr(ord(c) + 0xFEE0) for c in prefix)  # ＬＰ２０２６
    return [
        claim_no.lower(),
        f"{wide}－{digits}",
        f"{prefix}—{digits}", f"{prefix}–{digits}", f"{prefix}‐{digits}", f"{prefix}‑{digits}",
        f"{prefix}ー{digits}",
        f" {prefix} - {digits[:3]}\u3000{digits[3:]} ",
        f"\u200b{prefix}-\ufeff{digits}\u200d",
        f"{prefix}{digits}", f"{prefix.lower()}{digits}",
        f"{year}-{digits}", f"{year}{digits}", f"{year}－{digits}",
    ]


@pytest.mark.parametrize("typed", phone_typed("LP2026-000098"))
def test_a_claim_number_as_a_phone_types_it_is_the_claim_number(typed: str) -> None:
    assert normal_claim_no(typed) == "LP2026-000098"
    assert StatusQuerySchema().load({"claim_no": typed, "id_last6": "123456"})["claim_no"] == (
        "LP2026-000098")


def test_what_is_no_claim_number_still_answers_422(client: FlaskClient) -> None:
    for typed in ("LP 2026/1", "LP2026_000098", "第2026-000098号"):
        answer = ask(client, {"claim_no": typed, "id_last6": "123456"})
        assert answer.status_code == 422, typed
        assert answer.json["errors"][0]["code"] == "invalid_claim_no"


def test_a_claim_number_typed_on_a_phone_finds_the_claim(client: FlaskClient,
                                                        county: County) -> None:
    member = enrolled(county)
    claim = county.claim(member)
    for typed in phone_typed(claim["claim_no"]):
        answer = ask(client, {"claim_no": typed, "id_last6": member["id_number"][-6:]})
        assert answer.status_code == 200, (typed, answer.json)
        assert answer.json["claims"][0]["claim_no"] == claim["claim_no"]


def test_the_last_six_as_a_phone_types_them(client: FlaskClient, county: County) -> None:
    member = enrolled(county)
    claim = county.claim(member)
    number = member["id_number"]
    wide = "".join(chr(ord(c) + 0xFEE0) for c in number[-6:])  # full-width digits
    for typed in (wide, f" {number[-6:-3]} {number[-3:]}\u200b", number,  # the whole ID pasted
                  f"{number[:6]} {number[6:14]} {number[14:]}",
                  "".join(chr(ord(c) + 0xFEE0) for c in number)):
        answer = ask(client, {"claim_no": claim["claim_no"], "id_last6": typed})
        assert answer.status_code == 200, (typed, answer.json)


def test_only_what_looks_like_a_whole_id_number_is_cut_to_its_last_six(
        client: FlaskClient, county: County) -> None:
    member = enrolled(county)
    claim = county.claim(member)
    assert ask(client, {"claim_no": claim["claim_no"],
                        "id_last6": "X" + member["id_number"][1:]}).status_code == 422
    assert ask(client, {"claim_no": claim["claim_no"],
                        "id_last6": member["id_number"][:6] + "0000"}).status_code == 422


def test_a_guess_counts_against_one_claim_number_however_typed(client: FlaskClient,
                                                              county: County) -> None:
    assert claim_no_key("lp2026000098") == claim_no_key("LP2026-000098") == "LP2026-000098"
    assert claim_no_key("2026000098") == claim_no_key("ＬＰ２０２６－０００ ０９８")
    member = enrolled(county)
    claim = county.claim(member)
    typed = phone_typed(claim["claim_no"])
    for n in range(10):  # each wrong guess from a new address, typed another way
        wrong = {"claim_no": typed[n % len(typed)], "id_last6": "000000"}
        assert ask(client, wrong, address=f"10.0.5.{n}").status_code == 404
    assert ask(client, {"claim_no": claim["claim_no"].replace("-", ""),
                        "id_last6": member["id_number"][-6:]},
               address="10.0.6.1").status_code == 429


# --- names with a middle dot -------------------------------------------------------------------

DOTS = ("·", "•", "・", "‧", "∙", "･", "．", "⋅")


@pytest.mark.parametrize("dot", DOTS)
def test_a_names_middle_dot_is_one_dot(dot: str) -> None:
    assert normal_name(f"阿依古丽{dot}买买提") == "阿依古丽·买买提"
    assert normal_name(f" 阿依古丽 {dot} 买买提 ") == "阿依古丽·买买提"


def test_a_latin_name_keeps_its_full_stop() -> None:
    assert normal_name("A. Tursun") == "A. Tursun"
    assert normal_name("阿依古丽.买买提") == "阿依古丽·买买提"  # an ASCII full stop between Han


def test_a_name_with_a_middle_dot_is_found_however_the_dot_is_typed(
        client: FlaskClient, county: County) -> None:
    member = enrolled(county, name="阿依古丽・买买提")  # a roster's katakana middle dot
    assert member["name"] == "阿依古丽·买买提"  # stored through the same normaliser
    claim = county.claim(member)
    for dot in DOTS:
        answer = ask(client, {"id_number": member["id_number"], "name": f"阿依古丽{dot}买买提"})
        assert answer.status_code == 200, (dot, answer.json)
        assert [c["claim_no"] for c in answer.json["claims"]] == [claim["claim_no"]]
    assert ask(client, {"id_number": member["id_number"],
                        "name": "阿依古丽买买提"}).status_code == 404  # the dot is part of it


def test_a_death_claims_beneficiary_name_with_a_dot_is_found(client: FlaskClient,
                                                           county: County) -> None:
    from conftest import new_id_number

    member = enrolled(county, "accident")
    beneficiary = new_id_number(sex="F")
    body: dict[str, Any] = {"name": "古丽•艾力", "id_number": beneficiary, "relation": "配偶"}
    claim = county.claim(member, "accident", cause="accident", death=True, beneficiary=body,
                         total_expense="0.00", insurance_paid="0.00", self_paid="0.00",
                         documents=["claim_form", "id_card", "accident_proof",
                                    "death_certificate"])
    answer = ask(client, {"id_number": beneficiary, "name": "古丽·艾力"})
    assert answer.status_code == 200, answer.json
    assert [c["claim_no"] for c in answer.json["claims"]] == [claim["claim_no"]]
    assert ask(client, by_claim(claim, member)).status_code == 404
