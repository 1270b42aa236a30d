"""SPEC §2 and §7: resident ID numbers (GB 11643) and exact money."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claims.idcard import (
    IdNumberError,
    age_on,
    check_digit,
    make_id_number,
    mask,
    normalise_id_number,
    parse_id_number,
)
from claims.money import MAX_FEN, MoneyError, format_fen, parse_yuan, round_fen

KNOWN_VALID = "11010519491231002X"


# --- ID numbers ------------------------------------------------------------------------


def test_a_known_valid_id_number_parses_with_birth_date_and_sex():
    parsed = parse_id_number(KNOWN_VALID)
    assert parsed.number == KNOWN_VALID
    assert parsed.birth_date == date(1949, 12, 31)
    assert parsed.sex == "F"


def test_a_wrong_check_digit_is_refused():
    with pytest.raises(IdNumberError) as refused:
        parse_id_number("110105194912310021")
    assert refused.value.code == "invalid_check_digit"


def test_an_impossible_birth_date_is_refused_even_with_a_right_check_digit():
    body = "11010519900230123"  # 30 February 1990
    with pytest.raises(IdNumberError) as refused:
        parse_id_number(body + check_digit(body))
    assert refused.value.code == "invalid_birth_date"


def test_a_birth_date_in_the_future_is_refused_when_today_is_given():
    number = make_id_number("110105", date(2030, 1, 1), 1, "M")
    with pytest.raises(IdNumberError) as refused:
        parse_id_number(number, today=date(2026, 1, 1))
    assert refused.value.code == "invalid_birth_date"


def test_a_birth_year_before_1900_is_refused():
    body = "11010518991231001"
    with pytest.raises(IdNumberError) as refused:
        parse_id_number(body + check_digit(body))
    assert refused.value.code == "invalid_birth_date"


@pytest.mark.parametrize("number", [KNOWN_VALID[:17], KNOWN_VALID + "1", "", "1" * 20])
def test_an_id_number_must_have_18_characters(number):
    with pytest.raises(IdNumberError) as refused:
        parse_id_number(number)
    assert refused.value.code == "invalid_id_number"


@pytest.mark.parametrize(
    "number",
    [
        "01010519491231002X",
        "1101051949123100X2",
        "11010519491231002Y",
        "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X",  # Arabic-Indic: digits to \d, not to NFKC
        "11010519491231002-",
    ],
)
def test_an_id_number_is_17_digits_and_a_digit_or_x(number):
    with pytest.raises(IdNumberError) as refused:
        parse_id_number(number)
    assert refused.value.code == "invalid_id_number"


def test_full_width_digits_are_read_as_ascii_so_one_person_has_one_number():
    # Was: refused. The review asks for NFKC, which keeps the point (one person, one stored
    # number) and spares the clerk whose input method typed full width.
    body = "1" + "".join(chr(ord(digit) + 0xFEE0) for digit in "1010519491231001")
    assert check_digit("11010519491231001") == "1"
    assert parse_id_number(body + "1").number == "110105194912310011"
    assert parse_id_number("１１０１０５１９４９１２３１００２Ｘ").number == KNOWN_VALID
    assert parse_id_number("１１０１０５１９４９１２３１００２ｘ").number == KNOWN_VALID


@pytest.mark.parametrize(
    "typed",
    [
        f"\ufeff{KNOWN_VALID}",  # a BOM pasted from a text file
        f"{KNOWN_VALID[:6]}\u200b{KNOWN_VALID[6:]}",  # zero-width space
        f"\u200c{KNOWN_VALID}\u200d",  # zero-width non-joiner and joiner
        f"{KNOWN_VALID[:10]}\u2060{KNOWN_VALID[10:]}",  # word joiner
        f"\u202a{KNOWN_VALID}\u202c",  # direction marks from a web page
        "110105 19491231 002X",  # typed in groups
        "110105\u300019491231\u3000002x",  # ideographic spaces
        "110105\u00a019491231\u00a0002X",  # no-break spaces
        f"\t{KNOWN_VALID}\n",
    ],
)
def test_invisible_characters_and_spaces_in_an_id_number_are_removed(typed):
    parsed = parse_id_number(typed)
    assert parsed.number == KNOWN_VALID
    assert parsed.masked == mask(KNOWN_VALID) == "110105********002X"
    assert normalise_id_number(typed) == KNOWN_VALID


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=18),
            st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", " ", "\u3000"]),
        ),
        max_size=6,
    ),
    st.booleans(),
)
def test_any_invisible_or_space_characters_anywhere_leave_the_same_number(inserted, wide):
    typed = KNOWN_VALID.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789X"}) \
        if wide else KNOWN_VALID
    for position, character in sorted(inserted, reverse=True):
        typed = typed[:position] + character + typed[position:]
    parsed = parse_id_number(typed)
    assert parsed.number == KNOWN_VALID and parsed.number.isascii() and len(parsed.number) == 18


def test_an_id_number_must_be_text():
    with pytest.raises(IdNumberError):
        parse_id_number(11010519491231002)  # type: ignore[arg-type]


def test_a_lowercase_x_is_taken_as_x():
    assert parse_id_number(KNOWN_VALID.lower()).number == KNOWN_VALID


def test_sex_comes_from_the_17th_digit_odd_for_men():
    man = make_id_number("110105", date(1980, 5, 1), 3, "M")
    woman = make_id_number("110105", date(1980, 5, 1), 3, "F")
    assert int(man[16]) % 2 == 1 and parse_id_number(man).sex == "M"
    assert int(woman[16]) % 2 == 0 and parse_id_number(woman).sex == "F"


def test_masking_shows_the_first_6_and_last_4_around_8_stars():
    assert mask(KNOWN_VALID) == "110105********002X"
    assert parse_id_number(KNOWN_VALID).masked == "110105********002X"


def test_masking_nothing_is_nothing():
    assert mask(None) is None


def test_age_counts_whole_years_turning_on_the_birthday():
    born = date(2000, 6, 15)
    assert age_on(born, date(2016, 6, 14)) == 15
    assert age_on(born, date(2016, 6, 15)) == 16


areas = st.from_regex(r"[1-9][0-9]{5}", fullmatch=True)
births = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))


@given(
    area=areas,
    born=births,
    sequence=st.integers(min_value=0, max_value=99),
    sex=st.sampled_from(["M", "F"]),
)
def test_a_made_id_number_always_parses_back_to_its_birth_date_and_sex(area, born, sequence, sex):
    number = make_id_number(area, born, sequence, sex)
    parsed = parse_id_number(number)
    assert parsed.number == number
    assert parsed.birth_date == born
    assert parsed.sex == sex
    masked = mask(number)
    assert masked is not None and len(masked) == 18
    assert masked == number[:6] + "*" * 8 + number[-4:]


@given(area=areas, born=births, sequence=st.integers(min_value=0, max_value=99))
def test_changing_one_digit_breaks_the_check(area, born, sequence):
    number = make_id_number(area, born, sequence, "F")
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    with pytest.raises(IdNumberError) as refused:
        parse_id_number(wrong)
    assert refused.value.code == "invalid_check_digit"


# --- money -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "fen"),
    [
        ("1500", 150000),
        ("1500.00", 150000),
        ("1500.5", 150050),
        ("0.01", 1),
        ("0", 0),
        (1, 100),
        (0, 0),
        (Decimal("1.5"), 150),
        (Decimal("0.05"), 5),
        (1.5, 150),
        (0.1, 10),
        ("99999999.99", MAX_FEN),
    ],
)
def test_amounts_are_parsed_to_exact_fen(written, fen):
    assert parse_yuan(written) == fen


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("1.230", "too_many_decimals"),
        ("0.001", "too_many_decimals"),
        (Decimal("1.005"), "too_many_decimals"),
        ("-1", "negative_amount"),
        (-1, "negative_amount"),
        ("NaN", "invalid_amount"),
        ("Infinity", "invalid_amount"),
        ("-Infinity", "invalid_amount"),
        (Decimal("NaN"), "invalid_amount"),
        (float("inf"), "invalid_amount"),
        ("100000000.00", "amount_too_large"),
        ("100000000", "amount_too_large"),
        (True, "invalid_amount"),
        (False, "invalid_amount"),
        (None, "invalid_amount"),
        ("", "invalid_amount"),
        (" 1", "invalid_amount"),
        ("1 ", "invalid_amount"),
        ("one", "invalid_amount"),
        ([1], "invalid_amount"),
        ("-1_000", "invalid_amount"),
        ("1e3", "invalid_amount"),
        ("+1", "invalid_amount"),
        (".5", "invalid_amount"),
        ("1.", "invalid_amount"),
    ],
)
def test_amounts_that_cannot_be_taken_as_written_are_refused_never_rounded(written, code):
    with pytest.raises(MoneyError) as refused:
        parse_yuan(written)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("fen", "written"),
    [(0, "0.00"), (5, "0.05"), (150, "1.50"), (150000, "1500.00"), (MAX_FEN, "99999999.99")],
)
def test_fen_are_written_as_yuan_with_two_places(fen, written):
    assert format_fen(fen) == written


def test_no_amount_is_written_as_nothing():
    assert format_fen(None) is None


@pytest.mark.parametrize(
    ("exact", "fen"),
    [("0.5", 1), ("0.49", 0), ("1.5", 2), ("2.5", 3), ("2.4999", 2), ("0", 0)],
)
def test_round_fen_rounds_half_up_not_to_even(exact, fen):
    assert round_fen(Decimal(exact)) == fen


@given(st.integers(min_value=0, max_value=MAX_FEN))
def test_every_amount_written_parses_back_to_the_same_fen(fen):
    assert parse_yuan(format_fen(fen)) == fen


# Python's Decimal() and int() take "1_000", full-width "１００" and Arabic-Indic "٣.٥٠";
# an amount as written is ASCII digits, an optional point with digits, nothing else.
NOT_ASCII_AMOUNTS = {
    "underscore-grouping": "1_000.00",
    "underscores-in-fraction": "1_0.0_0",
    "full-width-digits": "１００",
    "arabic-indic-digits": "٣.٥٠",
    "devanagari-digits": "१००",
    "full-width-point": "100．00",
}


@pytest.mark.parametrize("written", NOT_ASCII_AMOUNTS.values(), ids=NOT_ASCII_AMOUNTS.keys())
def test_money_refuses_digits_other_than_ascii_and_underscores(written):
    with pytest.raises(MoneyError) as refused:
        parse_yuan(written)
    assert refused.value.code == "invalid_amount"


AMOUNT_AS_WRITTEN = re.compile(r"-?[0-9]+(\.[0-9]{1,2})?")
amount_like_text = st.text(alphabet="0123456789._-+eE ,１٣०\u00a0", max_size=14)


@given(st.one_of(amount_like_text, st.text(max_size=14)))
def test_money_takes_text_only_as_ascii_digits_and_one_point(written):
    try:
        fen = parse_yuan(written)
    except MoneyError:
        return
    assert AMOUNT_AS_WRITTEN.fullmatch(written), written
    assert Decimal(written) * 100 == fen  # "-0" is zero, the one minus that passes


@given(st.from_regex(r"\A[0-9]{1,8}(\.[0-9]{1,2})?\Z"))
def test_money_takes_every_ascii_amount_of_two_places_exactly(written):
    assert parse_yuan(written) == Decimal(written) * 100


@given(st.from_regex(r"\A[0-9]{1,8}(\.[0-9]{1,2})?\Z"),
       st.sampled_from(["_", "１", "٣", "e", " ", "+"]), st.data())
def test_money_refuses_an_amount_with_any_foreign_character_inserted(written, foreign, data):
    at = data.draw(st.integers(min_value=0, max_value=len(written)))
    with pytest.raises(MoneyError) as refused:
        parse_yuan(written[:at] + foreign + written[at:])
    assert refused.value.code == "invalid_amount"


@given(st.integers(min_value=0, max_value=MAX_FEN))
def test_money_still_takes_json_numbers_as_int_and_decimal(fen):
    assert parse_yuan(Decimal(fen).scaleb(-2)) == fen
    if fen % 100 == 0:
        assert parse_yuan(fen // 100) == fen


def test_amounts_for_pages_are_grouped_by_thousands_and_never_lose_a_fen():
    assert format_fen(30823767, grouped=True) == "308,237.67"
    assert format_fen(-123456789, grouped=True) == "-1,234,567.89"
    assert format_fen(5, grouped=True) == "0.05"
    assert format_fen(30823767) == "308237.67"  # what the API writes and reads back
