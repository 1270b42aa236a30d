"""Console: import a unit's roster (名册导入) at /console/members/import. Check first (a dry
run), see every bad row with its row number, column and reason, then import: all or nothing.
The same reading (claims/schemas/roster.py) and rules (workflows/roster.py) as the API.
"""

from __future__ import annotations

import re
from typing import Any

import flask
from flask import g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from claims.api.roster import checked_import
from claims.runtime import get_runtime, get_session
from claims.schemas.roster import LABELS, MAX_ROSTER_BYTES, read_roster
from claims.web.console import console
from claims.web.forms import chinese
from workflows.errors import DomainError
from workflows.roster_rows import RosterRefused

# The wording of the roster's own refusal codes (the shared ones are in claims.web.forms; the
# enrolment rules', shares and age, with their values, in claims.web.console_rules).
ROSTER_MESSAGES: dict[str, Any] = {
    "invalid_id_number": _l("身份证号码格式不正确（18 位）"),
    "invalid_check_digit": _l("身份证号码校验位不正确"),
    "invalid_birth_date": _l("身份证号码中的出生日期不正确"),
    "id_number_as_number": _l("身份证号码被存成了数字，末几位已丢失：请把该列设为文本后重新填写"),
    "duplicate_in_file": _l("文件中身份证号码重复"),
    "unknown_unit": _l("没有此单位代码"),
    "other_unit": _l("只能导入本单位的职工"),
    "overlapping_enrolment": _l("与已有参保期间重叠"),
    "end_before_start": _l("止保日期早于起保日期"),
    "unreadable_file": _l("文件无法读取，请上传 .xlsx 或 .csv 文件"),
    "unsupported_format": _l("不支持旧版 .xls 文件，请另存为 .xlsx 或 .csv"),
    "missing_columns": _l("未找到表头：姓名、身份证号、单位代码"),
    "several_sheets": _l("多个工作表都有花名册表头：请每次只导入一个工作表"),
    "cell_error": _l("单元格中是表格的错误值，请改正公式或填写实际内容"),
    "empty_upload": _l("文件是空的"),
    "empty_file": _l("文件中没有职工数据"),
    "too_many_rows": _l("行数过多，请分批导入"),
    "too_many_requests": _l("今天已多次提交含其他单位职工身份证号码的名册，"
                            "请明天再试，或联系县总工会办理"),
    "file_too_large": _l("文件过大"),
}


@console.before_app_request
def _allow_large_rosters() -> None:
    # Raised before the console's CSRF check reads the form: a roster may exceed 1 MiB.
    if request.endpoint == "console.roster_import" and request.method == "POST":
        request.max_content_length = MAX_ROSTER_BYTES


# Refusals whose English message carries a detail the Chinese one repeats.
_DETAILED: dict[str, tuple[re.Pattern[str], Any]] = {
    "several_sheets": (re.compile(r"\((?P<sheets>.*)\): import one sheet"),
                       _l("多个工作表都有花名册表头（%(sheets)s）：请每次只导入一个工作表")),
    "cell_error": (re.compile(r"error (?P<error>#\S+)\.$"),
                   _l("单元格中是表格的错误值 %(error)s，请改正公式或填写实际内容")),
}
_OTHER_UNIT_ROWS = re.compile(r"^(?P<n>\d+) row")


def _message(code: str, message: str) -> str:
    if code == "unknown_product":  # what may be written instead: the catalogue's names
        names = _("、").join(p.name for p in get_runtime().catalogue.products.values())
        return _("没有此险种；可填：%(names)s（或其代码）", names=names)
    if code == "invalid_date":
        return _("日期格式不正确，请写作 2027-01-01，或设为 Excel 的日期格式")
    rows = _OTHER_UNIT_ROWS.search(message) if code == "other_unit_members" else None
    if rows is not None:
        return ngettext("有 %(num)s 行的身份证号码已登记在其他单位（不列出是哪几行），"
                        "请联系县总工会办理调动",
                        "有 %(num)s 行的身份证号码已登记在其他单位（不列出是哪几行），"
                        "请联系县总工会办理调动", int(rows["n"]))
    detailed = _DETAILED.get(code)
    found = detailed[0].search(message) if detailed else None
    if detailed and found:
        return str(detailed[1]) % found.groupdict()
    return str(ROSTER_MESSAGES.get(code) or chinese(code, message))


# claims.registry's enrolment-share warning as workflows.roster words it, per unit.
_SHARE_WARNING = re.compile(r"(?P<unit>\S+): 本单位(?P<product>.+)参保 (?P<enrolled>\d+)/"
                            r"(?P<employees>\d+) 人，低于要求的 (?P<share>\d+%)。")
# claims.schemas.roster's warning of an ID number Excel may have rounded (already masked).
_ROUNDED_WARNING = re.compile(r"Row (?P<row>\d+): the ID number (?P<masked>\S+) ends in 000 .*")


def _warning(text: str) -> str:
    """A roster warning in the page's language; one not known here shows as written."""
    rounded = _ROUNDED_WARNING.fullmatch(text)
    if rounded is not None:
        return _("第 %(row)s 行：身份证号码 %(masked)s 以 000 结尾，可能被 Excel 四舍五入过，"
                 "请与身份证原件核对。", **rounded.groupdict())
    share = _SHARE_WARNING.fullmatch(text)
    if share is None:
        return text
    product = share["product"]
    return _("%(unit)s: 本单位%(product)s参保 %(enrolled)s/%(employees)s 人，"
             "低于要求的 %(share)s。", **{**share.groupdict(), "product": _(product)})


def _problems(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's errors as table rows: row number, column as written, reason."""
    return [{"row": e.get("row"), "column": str(e["field"]).split(".", 2)[-1],
             "message": _message(e["code"], e["message"]), "code": e["code"]} for e in errors]


@console.route("/members/import", methods=["GET", "POST"])
def roster_import() -> Any:
    """Upload a roster: 预检 (check only) or 导入 (check, then apply all rows or none)."""
    headers = list(LABELS.values())
    if request.method == "GET":
        return render_template("console/roster_import.html", headers=headers, report=None,
                               problems=[], failure=None)
    dry_run = request.form.get("action") != "import"
    upload = request.files.get("file")
    report: dict[str, Any] | None = None
    problems: list[dict[str, Any]] = []
    failure: str | None = None
    status = 200
    db = get_session()
    if upload is None or not upload.filename:
        failure, status = _("请选择要上传的花名册文件。"), 422
    else:
        try:
            roster = read_roster(upload.read(), source=upload.filename)
            result = checked_import(db, g.actor, roster, dry_run=dry_run)
        except RosterRefused as refused:
            db.rollback()
            report, status = dict(refused.report), 422
            report["warnings"] = [_warning(w) for w in report["warnings"]]
            problems = _problems(report["errors"])
        except DomainError as error:
            db.rollback()
            first = error.errors[0] if error.errors else None
            failure = _message(first.code, first.message) if first else error.message
            status = error.status
        else:
            report = result.as_dict(roster)
            report["warnings"] = [_warning(w) for w in report["warnings"]]
            problems = _problems(report["errors"])
            if dry_run:
                db.rollback()
            else:
                db.commit()
                flask.flash(_("已导入：新增 %(created)s 人，更新 %(updated)s 人，新增参保 "
                              "%(enrolled)s 条。", created=report["members_created"],
                              updated=report["members_updated"],
                              enrolled=report["enrolments_created"]))
    return render_template("console/roster_import.html", headers=headers, report=report,
                           problems=problems, failure=failure,
                           filename=upload.filename if upload else ""), status
