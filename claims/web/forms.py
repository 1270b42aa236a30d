"""The console's forms as data: what each field is called, and posted forms read into API input."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import marshmallow as ma
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from claims.money import format_fen
from claims.runtime import get_runtime
from claims.schemas.claims import ClaimEventInSchema, ClaimInSchema
from claims.schemas.fields import error_code_for
from claims.web.console_rules import rule_message
from workflows.errors import DomainError

FIELD_LABELS: dict[str, Any] = {
    "id_number": _l("身份证号码"),
    "product_code": _l("险种"),
    "cause": _l("出险原因"),
    "incident_date": _l("出险日期"),
    "admission_date": _l("入院日期"),
    "discharge_date": _l("出院日期"),
    "hospital": _l("医院"),
    "diagnosis": _l("诊断"),
    "total_expense": _l("医疗总费用（元）"),
    "insurance_paid": _l("基本医保支付（元）"),
    "self_paid": _l("个人自付（元）"),
    "disability_grade": _l("伤残等级"),
    "disability_assessed_on": _l("伤残鉴定日期"),
    "documents": _l("材料"),
    "reason": _l("原因"),
    "reason_code": _l("原因代码"),
    "amount": _l("金额（元）"),
    "date": _l("日期"),
    "place": _l("地点"),
    "receipt_no": _l("收据编号"),
    "proxy_name": _l("代领人姓名"),
    "proxy_reference": _l("授权委托书编号"),
    "death": _l("身故"),
    "beneficiary": _l("受益人"),
    "beneficiary_name": _l("受益人姓名"),
    "beneficiary_id_number": _l("受益人身份证号码"),
    "beneficiary_relation": _l("与职工关系"),
}
CAUSES: dict[str, Any] = {"illness": _l("疾病"), "accident": _l("意外")}
# Chinese for the machine codes the schemas and workflows give; other messages show as written.
MESSAGES: dict[str, Any] = {
    "required": _l("请填写此项"),
    "invalid_date": _l("日期格式不正确"),
    "invalid_type": _l("格式不正确"),
    "too_long": _l("内容过长"),
    "date_in_future": _l("日期不能晚于今天"),
    "unknown_member": _l("没有此身份证号码的参保职工"),
    "discharge_before_admission": _l("出院日期不能早于入院日期"),
    "admission_before_incident": _l("入院日期不能早于出险日期"),
    "assessed_before_incident": _l("伤残鉴定日期不能早于出险日期"),
    "expenses_exceed_total": _l("医保支付与个人自付之和不能超过总费用"),
    "cause_not_covered": _l("此险种不保障该出险原因"),
    "not_applicable": _l("此项不适用"),
    "amount_not_positive": _l("金额须大于 0"),
    "amount_mismatch": _l("金额与核准金额不符"),
    "partial_payment": _l("兑付金额须与核准金额一致（如数兑付）"),
    "identity_mismatch": _l("身份证号码与领取人不符"),
    "duplicate_receipt": _l("此收据编号已使用"),
    "date_in_past": _l("日期不能早于今天"),
    "version_mismatch": _l("该理赔已被他人修改，请刷新后重试"),
    "transition_not_allowed": _l("理赔当前的状态不能办理这一事项，请刷新页面查看"),
    # the city office's sheet and remittances (console_batches, console_money)
    "unknown_claim": _l("没有此理赔编号"),
    "not_in_batch": _l("该理赔不在本批次中"),
    "not_submitted": _l("该理赔不在“已报送市总”状态，不能记录审核结果"),
    "not_approved": _l("该理赔尚未核准，不能登记到账"),
    "already_received": _l("该理赔的互助金已登记到账，不能重复登记"),
    "before_delivery": _l("到账日期不能早于理赔报送市总的日期"),
    "no_items": _l("请至少填写一行到账明细（理赔编号和金额）"),
    "invalid_choice": _l("请从列表中选择"),
    "missing_columns": _l("表中找不到“理赔编号、审核结果、核准金额、原因”列"),
    "unreadable_file": _l("不是可读取的 .xlsx 文件"),
    "not_xlsx": _l("请上传 .xlsx 格式的审核结果表"),
    "file_too_large": _l("文件过大"),
    "too_many_rows": _l("行数过多"),
    "too_many": _l("条目过多"),
    "total_mismatch": _l("明细合计与到账总额不符"),
    "duplicate_reference": _l("此到账凭证号已登记"),
    "invalid_amount": _l("金额格式不正确"),
    "negative_amount": _l("金额不能为负数"),
    "too_many_decimals": _l("金额最多两位小数"),
    "amount_too_large": _l("金额过大"),
    "blank": _l("请填写此项"),
    "no_decisions_file": _l("请选择要上传的审核结果表（.xlsx）"),
    "nothing_requested": _l("请勾选要补交的材料，或在原因中写明还需补交什么"),
    "id_number_in_text": _l("此处不能填写身份证号码（会被单位工会和职工看到）"),
    # units and members (console_units)
    "duplicate": _l("已登记，不能重复"),
    "unknown_unit": _l("没有此单位代码"),
    "invalid_email": _l("电子邮箱格式不正确"),
    "invalid_check_digit": _l("身份证号码校验位不正确"),
    "invalid_birth_date": _l("身份证号码中的出生日期不正确"),
    "invalid_id_number": _l("身份证号码不正确"),
    "out_of_range": _l("超出允许的范围"),
    "death_and_disability": _l("伤残与身故只能选其一"),
    "unknown_document": _l("此险种没有这种材料"),
    "unknown_product": _l("没有此险种"),
    "overlapping_enrolment": _l("与已有参保期间重叠"),
    "duplicate_unit": _l("此单位代码已登记"),
    "duplicate_member": _l("此身份证号码已登记"),
    "duplicate_claim": _l("同一职工、险种和出险日期已有更早登记的理赔"),
    "batch_delivered": _l("此批次已报送市总"),
    "batch_changed": _l("批次内容已变动，请刷新后重试"),
    "concurrent_change": _l("有人同时在办理，请稍后重试"),
    "unknown_event": _l("没有此办理事项"),
    "unknown_reason_code": _l("没有此原因代码"),
    "wrong_reason_kind": _l("此原因代码不适用于这一事项"),
    "not_failed": _l("只有发送失败的通知才能重新发送"),
}
EVENT_FIELDS = ("reason", "reason_code", "amount", "date", "place", "id_number", "receipt_no",
                "proxy_name", "proxy_reference")
CLAIM_FIELDS = ("id_number", "product_code", "cause", "incident_date", "admission_date",
                "discharge_date", "hospital", "diagnosis", "total_expense", "insurance_paid",
                "self_paid", "disability_grade", "disability_assessed_on")

BENEFICIARY_FIELDS = ("name", "id_number", "relation")

Errors = dict[str, list[str]]


# A code that means more than its words for one field: "required" documents are boxes to tick.
FIELD_MESSAGES: dict[tuple[str, str], Any] = {
    ("documents", "required"): _l("请至少勾选一项材料"),
}
# marshmallow's own refusals that error_code_for knows only as "invalid": their meaning.
LIBRARY_CODES: dict[str, str] = {"Not a valid email address.": "invalid_email"}
# marshmallow's codes for a value it cannot take, whose English says no more than 格式不正确.
_GENERIC = frozenset({"invalid", "too_short", "null"})
_CHINESE = re.compile(r"[\u4e00-\u9fff]")


def chinese(code: str, message: str, field: str | None = None) -> str:
    """The message shown beside a field, in the page's language: by its code (and field), or
    an eligibility rule's with its values; else the API's message as written."""
    known = FIELD_MESSAGES.get((field or "", code)) or MESSAGES.get(code) or MESSAGES.get(
        LIBRARY_CODES.get(message, ""))
    if known is not None:
        return str(known)
    if code == "below_onsite_threshold":  # with the threshold the county configured
        threshold = format_fen(get_runtime().settings.onsite_threshold_fen, grouped=True)
        return _("现场理赔仅适用于大额理赔（核准金额 %(amount)s 元及以上）", amount=threshold)
    ruled = rule_message(code, message)
    if ruled is not None:
        return ruled
    if not _CHINESE.search(message) and code in _GENERIC:
        return str(MESSAGES["invalid_type"])
    return message


def _add(errors: Errors, field: str | None, text: str) -> None:
    errors.setdefault(field or "_form", []).append(text)


def schema_errors(error: ma.ValidationError) -> Errors:
    """marshmallow's {field: [message]} as the console shows it; a nested field by its form
    name (beneficiary.id_number -> beneficiary_id_number)."""
    errors: Errors = {}
    messages = error.messages if isinstance(error.messages, dict) else {"_form": error.messages}
    for field, found in messages.items():
        if isinstance(found, dict):
            nested = schema_errors(ma.ValidationError(found))
            for inner, texts in nested.items():
                errors.setdefault(f"{field}_{inner}", []).extend(texts)
            continue
        for text in found if isinstance(found, list) else [str(found)]:
            _add(errors, str(field), chinese(error_code_for(str(text)), str(text), str(field)))
    return errors


def domain_errors(error: DomainError) -> Errors:
    """A workflow's refusal, each failed rule beside its field (or above the form)."""
    errors: Errors = {}
    for failure in error.errors:
        _add(errors, failure.field, chinese(failure.code, failure.message, failure.field))
    if not error.errors:
        _add(errors, None, chinese(error.code, error.message))
    return errors


AMOUNT_FIELDS = frozenset({"total_expense", "insurance_paid", "self_paid", "amount",
                           "total_amount"})
# 12,000 or 1,234.50 as people write money (the API takes 12000 only): whole groups of three.
_GROUPED = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")


def typed_amount(text: str) -> str:
    """An amount as typed in a form, as the API reads it: full-width digits and separators
    (an input method's １２，０００) made ASCII, and thousands separators dropped."""
    value = unicodedata.normalize("NFKC", text).strip()
    return value.replace(",", "") if _GROUPED.match(value) else value


def _typed(form: MultiDict[str, str], names: tuple[str, ...]) -> dict[str, Any]:
    """The non-blank fields of a posted form, trimmed: a blank box means 'not given'."""
    return {name: typed_amount(form[name]) if name in AMOUNT_FIELDS else form[name].strip()
            for name in names if form.get(name, "").strip()}


def read_event(form: MultiDict[str, str], event: str, takes: tuple[str, ...]) -> dict[str, Any]:
    """A posted event form as the API's event body, validated by ClaimEventInSchema."""
    raw = _typed(form, tuple(f for f in EVENT_FIELDS if f in takes))
    if "documents" in takes:
        raw["documents"] = form.getlist("documents")
    loaded = ClaimEventInSchema().load({"event": event, **raw})
    loaded.pop("event")
    return loaded


def read_claim(form: MultiDict[str, str]) -> dict[str, Any]:
    """A posted claim form as the API's claim body, validated by ClaimInSchema."""
    raw: dict[str, Any] = _typed(form, CLAIM_FIELDS)
    if "disability_grade" in raw:
        grade = raw["disability_grade"]
        raw["disability_grade"] = int(grade) if grade.isdigit() else grade
    raw["documents"] = form.getlist("documents")
    if form.get("death"):  # a death claim names who collects: the beneficiary (SPEC §2)
        raw["death"] = True
        raw["beneficiary"] = {key: form[f"beneficiary_{key}"].strip()
                              for key in BENEFICIARY_FIELDS
                              if form.get(f"beneficiary_{key}", "").strip()}
    return ClaimInSchema().load(raw)
