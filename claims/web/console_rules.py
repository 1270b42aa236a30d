"""The eligibility rules' refusals (claims/rules.py) as the console says them: in the page's
language, documents by name, dates as the console writes them (2024-06-01).

The rules speak to the API: Chinese, documents by code, dates as 2024年6月1日. Their
sentences are templates (RULE_TEXTS), so the values are read back out of a message and put
into the console's own sentence for the same code and variant.
"""

from __future__ import annotations

import re
import string
from datetime import date
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from claims.rules import RULE_TEXTS
from claims.runtime import get_runtime

# The console's sentence for each variant of RULE_TEXTS (tests/test_console_wording.py keeps
# the two tables in step).
RULE_SENTENCES: dict[str, Any] = {
    "not_enrolled": _l("该职工未参加%(product)s。"),
    "outside_cover": _l("出险日期 %(incident)s 不在保障期内（%(start)s 至 %(end)s）。"),
    "waiting_period": _l("疾病出险在等待期内：%(days)s 天等待期满后，自 %(covered_from)s "
                         "起发生的疾病才予保障。"),
    "renewed": _l("疾病出险在等待期内（自 %(since)s 起连续参保）：%(days)s 天等待期满后，"
                  "自 %(covered_from)s 起发生的疾病才予保障。"),
    "from_discharge": _l("已超过申请时限：应自出院之日起 %(days)s 天内，即最迟 %(last_day)s"
                         "（含当日）申请。"),
    "from_incident": _l("已超过申请时限：应自出险之日起 %(days)s 天内，即最迟 %(last_day)s"
                        "（含当日）申请。"),
    "documents_incomplete": _l("理赔材料不齐，尚缺：%(documents)s。"),
    "duplicate_claim": _l("该职工同一险种、同一出险日期已有更早登记的理赔，本件为重复申请。"),
    "already_paid": _l("%(product)s每人限赔一次，该职工已领取过互助金。"),
    "already_claimed": _l("%(product)s每人限赔一次，该职工已有一件在办理赔。"),
    "shares": _l("参保份数须为 1 至 %(max_shares)s 份。"),
    "end_before_start": _l("保障截止日期不能早于起始日期。"),
    "age": _l("保障起始日该职工 %(age)s 周岁，%(product)s参保年龄为 %(low)s 至 %(high)s "
              "周岁。"),
    "no_upper_limit": _l("保障起始日该职工 %(age)s 周岁，%(product)s参保年龄为 %(low)s "
                         "周岁及以上。"),
    "women_only": _l("%(product)s仅限女职工参加。"),
    "men_only": _l("%(product)s仅限男职工参加。"),
}
_DATE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")
_DATES = frozenset({"incident", "start", "end", "since", "covered_from", "last_day"})


def _pattern(template: str) -> re.Pattern[str]:
    """A RULE_TEXTS template as a pattern capturing each of its {fields}."""
    parts = []
    for literal, field, _spec, _conversion in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field:
            parts.append(f"(?P<{field}>.+?)")
    return re.compile("".join(parts))


_PATTERNS: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    code: [(variant, _pattern(template)) for variant, template in variants.items()]
    for code, variants in RULE_TEXTS.items()}


def _shown(field: str, value: str) -> str:
    """One value of a rule's message as the console shows it."""
    if field in _DATES:
        found = _DATE.fullmatch(value)
        return date(*(int(part) for part in found.groups())).isoformat() if found else value
    if field == "product":
        return _(value)  # a catalogue's name: SHARED_LABELS has the default ones
    if field == "documents":
        names = get_runtime().catalogue.document_names
        return _("、").join(_(names.get(code, code)) for code in value.split("、"))
    return value


def rule_message(code: str, message: str) -> str | None:
    """An eligibility rule's refusal in the page's language, or None if it is not one."""
    for variant, pattern in _PATTERNS.get(code, ()):
        found = pattern.fullmatch(message)
        if found:
            values = {field: _shown(field, text) for field, text in found.groupdict().items()}
            return str(RULE_SENTENCES[variant]) % values
    return None
