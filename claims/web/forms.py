"""The console's forms as data: what each field is called, and posted forms read into API input."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from werkzeug.datastructures import MultiDict

from claims.schemas.claims import ClaimEventInSchema, ClaimInSchema
from claims.schemas.fields import error_code_for
from workflows.errors import DomainError

FIELD_LABELS: dict[str, str] = {
    "id_number": "身份证号码",
    "product_code": "险种",
    "cause": "出险原因",
    "incident_date": "出险日期",
    "admission_date": "入院日期",
    "discharge_date": "出院日期",
    "hospital": "医院",
    "diagnosis": "诊断",
    "total_expense": "医疗总费用（元）",
    "insurance_paid": "基本医保支付（元）",
    "self_paid": "个人自付（元）",
    "disability_grade": "伤残等级",
    "documents": "材料",
    "reason": "原因",
    "amount": "金额（元）",
    "date": "日期",
    "place": "地点",
    "receipt_no": "收据编号",
    "proxy_name": "代领人姓名",
    "proxy_reference": "授权委托书编号",
}
CAUSES = {"illness": "疾病", "accident": "意外"}
# Chinese for the machine codes the schemas and workflows give; other messages show as written.
MESSAGES: dict[str, str] = {
    "required": "请填写此项",
    "invalid_date": "日期格式不正确",
    "invalid_type": "格式不正确",
    "too_long": "内容过长",
    "date_in_future": "日期不能晚于今天",
    "unknown_member": "没有此身份证号码的参保职工",
    "discharge_before_admission": "出院日期不能早于入院日期",
    "admission_before_incident": "入院日期不能早于出险日期",
    "expenses_exceed_total": "医保支付与个人自付之和不能超过总费用",
    "cause_not_covered": "此险种不保障该出险原因",
    "not_applicable": "此项不适用",
    "amount_not_positive": "金额须大于 0",
    "amount_mismatch": "金额与核准金额不符",
    "partial_payment": "兑付金额须与核准金额一致（如数兑付）",
    "identity_mismatch": "身份证号码与领取人不符",
    "duplicate_receipt": "此收据编号已使用",
    "date_in_past": "日期不能早于今天",
    "version_mismatch": "该理赔已被他人修改，请刷新后重试",
}
EVENT_FIELDS = ("reason", "amount", "date", "place", "id_number", "receipt_no", "proxy_name",
                "proxy_reference")
CLAIM_FIELDS = ("id_number", "product_code", "cause", "incident_date", "admission_date",
                "discharge_date", "hospital", "diagnosis", "total_expense", "insurance_paid",
                "self_paid", "disability_grade")

Errors = dict[str, list[str]]


def chinese(code: str, message: str) -> str:
    """The message shown beside a field: Chinese where the code is known."""
    return MESSAGES.get(code, message)


def _add(errors: Errors, field: str | None, text: str) -> None:
    errors.setdefault(field or "_form", []).append(text)


def schema_errors(error: ma.ValidationError) -> Errors:
    """marshmallow's {field: [message]} as the console shows it."""
    errors: Errors = {}
    messages = error.messages if isinstance(error.messages, dict) else {"_form": error.messages}
    for field, found in messages.items():
        for text in found if isinstance(found, list) else [str(found)]:
            _add(errors, str(field), chinese(error_code_for(str(text)), str(text)))
    return errors


def domain_errors(error: DomainError) -> Errors:
    """A workflow's refusal, each failed rule beside its field (or above the form)."""
    errors: Errors = {}
    for failure in error.errors:
        _add(errors, failure.field, chinese(failure.code, failure.message))
    if not error.errors:
        _add(errors, None, chinese(error.code, error.message))
    return errors


def _typed(form: MultiDict[str, str], names: tuple[str, ...]) -> dict[str, Any]:
    """The non-blank fields of a posted form, trimmed: a blank box means 'not given'."""
    return {name: form[name].strip() for name in names if form.get(name, "").strip()}


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
    return ClaimInSchema().load(raw)
