"""The reports as XLSX downloads: one workbook per report, Chinese headings, amounts in yuan.

Written by the manifest's streaming writer (workflows/xlsx_stream.py): text a spreadsheet
could read as a formula (= + - @ ...) gets Excel's quote prefix there, so a unit or member
name never runs as a formula.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from workflows.lifecycle import STATES
from workflows.xlsx_stream import Workbook


@dataclass(frozen=True)
class Yuan:
    """An amount in fen, written as a number of yuan with two places."""

    fen: int | None


@dataclass(frozen=True)
class Rate:
    """A ratio, written as a percentage."""

    value: float | None


@dataclass(frozen=True)
class Sheet:
    name: str
    headers: Sequence[str]
    rows: Iterable[Sequence[Any]]


@dataclass(frozen=True)
class _Styles:
    money: int
    rate: int
    day: int


def _cell(value: Any, styles: _Styles) -> tuple[Any, int]:
    """A report value as the cell the writer takes, and its style."""
    if isinstance(value, Yuan):
        return (None, 0) if value.fen is None else (Decimal(value.fen).scaleb(-2), styles.money)
    if isinstance(value, Rate):
        return (None, 0) if value.value is None else (value.value, styles.rate)
    if isinstance(value, bool):
        return ("是" if value else "否"), 0
    if value is None or isinstance(value, int | float):
        return value, 0
    if isinstance(value, date):
        return value, styles.day
    return str(value), 0


def workbook(sheets: Iterable[Sheet]) -> bytes:
    """The sheets as one XLSX file: a bold header row, frozen, then the rows."""
    specs = list(sheets)
    buffer = io.BytesIO()
    with Workbook(buffer, [spec.name for spec in specs]) as book:
        header = book.style(bold=True, fill="E8EEF7", border="all")
        styles = _Styles(money=book.style(number_format="#,##0.00"),
                         rate=book.style(number_format="0.0%"),
                         day=book.style(number_format="yyyy-mm-dd"))
        for spec in specs:
            widths = [max(10, len(h) * 2 + 2) for h in spec.headers]
            with book.sheet(spec.name, widths=widths, freeze_rows=1) as sheet:
                sheet.write_row(list(spec.headers), header)
                for values in spec.rows:
                    cells = [_cell(value, styles) for value in values]
                    sheet.write_row([c for c, _ in cells], [style for _, style in cells])
    return buffer.getvalue()


def summary_sheets(data: dict[str, Any]) -> list[Sheet]:
    figures = [
        ("年度", data["year"]), ("单位数", data["units"]), ("参保单位数", data["units_enrolled"]),
        ("职工人数", data["employees"]), ("参保人数", data["members_insured"]),
        ("参保率", Rate(data["enrolment_rate"])), ("登记理赔件数", data["claims"]),
        ("申请金额（测算）", Yuan(data["claimed"])), ("核准金额", Yuan(data["approved"])),
        ("已兑付金额（本年登记理赔）", Yuan(data["paid"])),
        ("本年兑付金额（按领取日期）", Yuan(data["paid_in_year"])),
        ("待领取件数（截至今日）", data["uncollected"]["claims"]),
        ("待领取金额（截至今日）", Yuan(data["uncollected"]["amount"])),
    ]
    states = [s for s in STATES if s in data["claims_by_state"]]
    products = [[p["product_name"], p["members_insured"], p["claims"],
                 *(p["by_state"].get(s, 0) for s in states), Yuan(p["claimed"]),
                 Yuan(p["approved"]), Yuan(p["paid"]), Yuan(p["paid_in_year"])]
                for p in data["by_product"]]
    return [Sheet("年度概况", ("指标", "数值"), figures),
            Sheet("分险种", ("险种", "参保人数", "理赔件数", *(STATES[s] for s in states),
                          "申请金额", "核准金额", "已兑付金额", "本年兑付金额（按领取日期）"),
                  products)]


def units_sheets(rows: list[dict[str, Any]]) -> list[Sheet]:
    return [Sheet("单位考核", ("单位代码", "单位名称", "片区", "职工人数", "参保人数", "参保率",
                           "登记理赔件数", "资料一次齐全件数", "一次齐全率", "出险到登记平均天数",
                           "出险到登记中位天数"),
                  [[r["unit_code"], r["unit_name"], r["area"], r["employee_count"],
                    r["members_insured"], Rate(r["enrolment_rate"]), r["claims"],
                    r["complete_first_time"], Rate(r["complete_share"]), r["days_to_log_mean"],
                    r["days_to_log_median"]] for r in rows])]


def turnaround_sheets(data: dict[str, Any]) -> list[Sheet]:
    rows: list[list[Any]] = []
    for stage in data["stages"]:
        rows.append([stage["label"], "全年", stage["count"], stage["median_days"],
                     stage["p90_days"]])
        rows += [[stage["label"], w["week"], w["count"], w["median_days"], w["p90_days"]]
                 for w in stage["weeks"]]
    return [Sheet("办理时效", ("阶段", "周", "件数", "中位天数", "90%分位天数"), rows)]


def uncollected_sheets(rows: list[dict[str, Any]], product_names: dict[str, str]) -> list[Sheet]:
    return [Sheet("待领取", ("理赔编号", "单位代码", "单位名称", "职工姓名", "险种", "状态", "金额",
                          "到账日期", "已等待天数", "现场理赔日期"),
                  [[r["claim_no"], r["unit_code"], r["unit_name"], r["member_name"],
                    product_names.get(r["product_code"], r["product_code"]), r["state_label"],
                    Yuan(r["amount"]), r["received_on"], r["days_waiting"], r["onsite_date"]]
                   for r in rows])]


def decisions_sheets(data: dict[str, Any], rows: list[dict[str, Any]],
                     product_names: dict[str, str]) -> list[Sheet]:
    figures = [("年度", data["year"]), ("核准件数", data["approved_claims"]),
               ("测算金额合计", Yuan(data["estimate_total"])),
               ("核准金额合计", Yuan(data["approved_total"])), ("差额", Yuan(data["difference"])),
               ("高于测算", data["above"]), ("低于测算", data["below"]),
               ("等于测算", data["equal"]),
               ("标记复核（高于测算）", data["flagged_above_estimate"]),
               ("不予赔付件数", data["rejected_claims"]),
               ("不予赔付测算金额", Yuan(data["rejected_estimate_total"]))]
    claims = [[r["claim_no"], r["unit_code"], r["member_name"],
               product_names.get(r["product_code"], r["product_code"]), r["state_label"],
               Yuan(r["estimate"]), Yuan(r["approved_amount"]), Yuan(r["difference"]),
               r["above_estimate"]] for r in rows]
    return [Sheet("核准对比", ("指标", "数值"), figures),
            Sheet("逐件", ("理赔编号", "单位代码", "职工姓名", "险种", "状态", "测算金额",
                         "核准金额", "差额", "高于测算"), claims)]


# The kinds of reason (config/reasons.toml), as the sheets name them.
REASON_KINDS = {"reject": "不予赔付", "return": "退回补材料", "document": "材料问题",
                "other": "其他"}


def reasons_sheets(data: dict[str, Any]) -> list[Sheet]:
    """The reasons report (workflows.reasons.reason_counts): the year's reasons, then each
    unit's and each product's, a row per reason, most given first."""

    def per(groups: list[dict[str, Any]], code: str, name: str) -> list[list[Any]]:
        return [[group[code], group[name], r["code"], r["label"], r["count"]]
                for group in groups for r in group["reasons"]]

    totals = [[r["code"], r["label"], REASON_KINDS.get(r["kind"], r["kind"] or ""), r["count"]]
              for r in data["reasons"]]
    return [Sheet("原因汇总", ("原因代码", "原因", "类别", "次数"),
                  [*totals, ["合计", "", "", data["total"]]]),
            Sheet("分单位", ("单位代码", "单位名称", "原因代码", "原因", "次数"),
                  per(data["by_unit"], "unit_code", "unit_name")),
            Sheet("分险种", ("险种代码", "险种", "原因代码", "原因", "次数"),
                  per(data["by_product"], "product_code", "product_name"))]


def subsidy_sheets(data: dict[str, Any]) -> list[Sheet]:
    figures = [("年度", data["year"]), ("补贴预算", Yuan(data["subsidy"])),
               ("已承担（互助费）", Yuan(data["committed"])), ("结余", Yuan(data["left"])),
               ("使用率", Rate(data["committed_share"]))]
    products = [[p["product_name"], Yuan(p["premium_per_share"]), p["enrolments"], p["shares"],
                 Yuan(p["committed"])] for p in data["by_product"]]
    return [Sheet("补贴预算", ("指标", "数值"), figures),
            Sheet("分险种", ("险种", "每份互助费", "参保人次", "份数", "互助费合计"), products)]
