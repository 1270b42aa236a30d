"""Decisions and remittances at the edge: the JSON schemas, and the city office's decisions sheet.

The sheet is the manifest (报送清单) sent back with DECISION_COLUMNS filled in. Columns are
found by their header text, on whichever sheet has them (the manifest has a cover sheet);
errors name the spreadsheet row and the column header as the clerk sees them:
`rows.7.核准金额`. A row with no outcome, amount or reason is skipped: that claim stays
undecided (the city office may decide a batch over several sheets); so is a totals row
(合计, 总计 or 小计 in a cell, no outcome, no claim number). A sheet deciding none of its
claims (the manifest sent back unfilled) is refused, naming its claim rows' 审核结果.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from claims.money import MoneyError, parse_yuan
from claims.schemas.common import InputSchema
from claims.schemas.fields import Identifier, Money, Text, coded
from claims.schemas.uploads import read_workbook, refuse_file
from workflows.batch import DECISION_COLUMNS, MANIFEST_COLUMNS
from workflows.errors import FieldError, RuleFailed
from workflows.manifest import OUTCOME_LABELS
from workflows.payout import MAX_DECISIONS, OUTCOME_EVENTS, Decision

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _not_blank(value: str) -> None:
    if not value.strip():
        raise coded("blank", "Must not be blank.")


# --- JSON ------------------------------------------------------------------------------------


class DecisionInSchema(InputSchema):
    class Meta:
        description = ("One claim's decision: approved needs approved_amount; rejected and "
                       "returned need a reason (or a reason_code).")

    claim_no = Identifier(required=True, max_length=40, validate=_not_blank)
    outcome = ma.fields.String(required=True, validate=ma.validate.OneOf(list(OUTCOME_EVENTS)))
    approved_amount = Money(allow_none=True)
    reason = Text(allow_none=True)
    reason_code = Text(allow_none=True, max_length=40, metadata={
        "description": "rejected or returned: a code of config/reasons.toml (its label stands "
                       "in for a missing reason)"})
    documents = ma.fields.List(Text(max_length=40), allow_none=True,
                               validate=ma.validate.Length(max=20), metadata={
        "description": "returned only: document codes the city office sends back; they are "
                       "marked rejected with the reason, and the unit union is told"})


class DecisionsInSchema(InputSchema):
    decisions = ma.fields.List(ma.fields.Nested(DecisionInSchema), required=True,
                               validate=ma.validate.Length(min=1, max=MAX_DECISIONS))


class DecisionsAppliedSchema(ma.Schema):
    applied = ma.fields.Integer()
    above_estimate = ma.fields.List(ma.fields.String())  # approved above the estimate: review


class RemittanceItemInSchema(InputSchema):
    claim_no = Identifier(required=True, max_length=40, validate=_not_blank)
    amount = Money(required=True)


class RemittanceInSchema(InputSchema):
    reference = Identifier(required=True, validate=_not_blank)
    received_on = ma.fields.Date(required=True)
    total_amount = Money(required=True)
    items = ma.fields.List(ma.fields.Nested(RemittanceItemInSchema), required=True,
                           validate=ma.validate.Length(min=1, max=MAX_DECISIONS))


class RemittanceItemSchema(ma.Schema):
    claim_no = ma.fields.String()
    amount = Money()


class RemittanceSchema(ma.Schema):
    id = ma.fields.Integer()
    reference = ma.fields.String()
    received_on = ma.fields.Date()
    total_amount = Money()
    items = ma.fields.List(ma.fields.Nested(RemittanceItemSchema))
    recorded_by = ma.fields.String()
    recorded_at = ma.fields.DateTime()


def decisions_from_json(items: list[dict[str, Any]]) -> list[Decision]:
    """The body's decisions, named decisions.0, decisions.1, ... in errors (as the schema does)."""
    return [Decision(claim_no=item["claim_no"], outcome=item["outcome"],
                     approved_amount=item.get("approved_amount"), reason=item.get("reason"),
                     reason_code=item.get("reason_code"),
                     documents=tuple(item.get("documents") or ()), where=f"decisions.{index}")
            for index, item in enumerate(items)]


# --- the decisions sheet -----------------------------------------------------------------------

SHEET_HEADERS: dict[str, str] = {
    "claim_no": dict(MANIFEST_COLUMNS)["claim_no"],  # 理赔编号
    **dict(DECISION_COLUMNS),  # 审核结果, 核准金额, 原因
}
OUTCOME_WORDS: dict[str, str] = {**{label: outcome for outcome, label in OUTCOME_LABELS.items()},
                                 **{word: word for word in OUTCOME_EVENTS}}
# Columns read when the sheet has them: the reason's code beside its text (原因代码 beside 原因).
OPTIONAL_HEADERS: dict[str, str] = {"reason_code": "原因代码"}
ROW_LABELS: dict[str, str] = {**SHEET_HEADERS, **OPTIONAL_HEADERS}
TOTALS_LABELS = ("合计", "总计", "小计")
HEADER_SEARCH_ROWS = 20  # the header row may sit below a title
MAX_SHEET_ROWS = 20_000
MAX_SHEET_COLUMNS = 64  # the manifest has 17; a sheet's own notes may add a few
MAX_NAMED_ROWS = 100  # an unfilled sheet names this many of its rows, and counts the rest


def read_decisions_sheet(data: bytes) -> list[Decision]:
    """The decisions in an .xlsx: one per row with an outcome, amount or reason filled in."""
    return read_workbook(data, _read_book)


def _read_book(book: Any) -> list[Decision]:
    missing: list[str] = list(SHEET_HEADERS.values())
    for sheet in book.worksheets:
        sheet.reset_dimensions()  # some writers record wrong dimensions; read what is there
        # As wide as a manifest could be: a cell at column XFD would make every row 16,384.
        rows = enumerate(sheet.iter_rows(max_col=MAX_SHEET_COLUMNS, values_only=True), start=1)
        for number, row in rows:
            if number > HEADER_SEARCH_ROWS:
                break
            headers = [_text(value) for value in row]
            if SHEET_HEADERS["claim_no"] not in headers:
                continue
            columns = {key: headers.index(title) for key, title in SHEET_HEADERS.items()
                       if title in headers}
            if len(columns) == len(SHEET_HEADERS):
                columns |= {key: headers.index(title) for key, title in OPTIONAL_HEADERS.items()
                            if title in headers}
                return _read_rows(rows, columns)
            missing = [title for key, title in SHEET_HEADERS.items() if key not in columns]
            break
    raise refuse_file("missing_columns",
                       f"No sheet has the columns {', '.join(SHEET_HEADERS.values())}; "
                       f"missing: {', '.join(missing)}.")


def _read_rows(rows: Any, columns: dict[str, int]) -> list[Decision]:
    decisions: list[Decision] = []
    undecided: list[int] = []  # rows of claims with every decision cell blank
    for number, row in rows:
        if number > MAX_SHEET_ROWS:
            raise refuse_file("too_many_rows", f"At most {MAX_SHEET_ROWS} rows are read.")
        cells = {key: _cell(row, index) for key, index in columns.items()}
        if all(cells.get(key) is None
               for key in ("outcome", "approved_amount", "reason", "reason_code")):
            claim_no = _text(cells["claim_no"])
            if claim_no and not claim_no.startswith(TOTALS_LABELS):
                undecided.append(number)
            continue  # undecided, blank, or the totals row
        if _is_totals_row(row, cells):
            continue  # the city office may total the approved amounts too
        decisions.append(_decision_from_row(number, cells))
    if not decisions and undecided:
        raise _nothing_decided(undecided)
    return decisions


def _nothing_decided(numbers: list[int]) -> RuleFailed:
    """The refusal of a sheet whose claims all have 审核结果, 核准金额 and 原因 blank."""
    outcome = SHEET_HEADERS["outcome"]
    choices = ", ".join(OUTCOME_LABELS.values())
    return RuleFailed(
        f"No claim on the sheet is decided: {outcome} is blank in all {len(numbers)} claim "
        f"row(s) (rows {numbers[0]}-{numbers[-1]}); nothing was recorded.",
        [FieldError(f"rows.{number}.{outcome}", "required",
                    f"{outcome} is blank: {choices}.") for number in numbers[:MAX_NAMED_ROWS]])


def _is_totals_row(row: tuple[Any, ...], cells: dict[str, Any]) -> bool:
    """合计 (or 总计, 小计) in any cell, no outcome, and no claim number but that label."""
    claim_no = _text(cells["claim_no"])
    if cells["outcome"] is not None or (claim_no and not claim_no.startswith(TOTALS_LABELS)):
        return False
    return any((_text(value) or "").startswith(TOTALS_LABELS) for value in row)


def _decision_from_row(number: int, cells: dict[str, Any]) -> Decision:
    where = f"rows.{number}"
    problems: list[FieldError] = []
    amount: int | None = None
    if cells["approved_amount"] is not None:
        try:
            # A number cell comes as a float: parse_yuan reads its repr, never float math.
            amount = parse_yuan(cells["approved_amount"])
        except MoneyError as error:
            problems.append(FieldError(f"{where}.{SHEET_HEADERS['approved_amount']}", error.code,
                                       f"{error.message} ({cells['approved_amount']!r})"))
    outcome = _text(cells["outcome"])
    if outcome is not None:
        outcome = OUTCOME_WORDS.get(outcome.lower(), outcome)
    return Decision(claim_no=_text(cells["claim_no"]), outcome=outcome, approved_amount=amount,
                    reason=_text(cells["reason"]), where=where, labels=ROW_LABELS,
                    problems=tuple(problems), reason_code=_text(cells.get("reason_code")))


def _cell(row: tuple[Any, ...], index: int) -> Any:
    value = row[index] if index < len(row) else None
    if isinstance(value, str):
        return value.strip() or None
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None
