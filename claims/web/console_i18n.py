"""The console's languages: Chinese first, English by the switch in its header (Flask-Babel).

The msgids are the Chinese text itself, so Chinese needs no catalogue; English lives in
claims/translations/en/LC_MESSAGES/messages.po, compiled to the committed messages.mo
(`pybabel compile -d claims/translations`; a test fails when the .mo lags the .po). The
workers' status pages use no gettext and stay Chinese whatever the switch says.

A word that is a nav link in the plural but a field's label for one thing (单位, 批次) has a
second msgid in the context "one": `pgettext('one', '单位')` is "Unit", `_('单位')` "Units".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Flask, current_app, request, session, url_for
from flask_babel import Babel, get_locale, gettext
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from claims.runtime import get_runtime
from claims.web.console import console
from workflows.reasons import reasons_of

LANGUAGES: dict[str, str] = {"zh": "中文", "en": "English"}
DEFAULT_LANGUAGE = "zh"
babel = Babel()

# Labels the console shows from other packages (the lifecycle's states and events, the
# catalogue's products and documents, the default reasons of config/reasons.toml, the report's
# turnaround stages, the festivals, the intake's fixed warning), listed here so extraction puts
# them in the catalogue; the `t` filter translates them at render time. A county's own wording
# shows as written. tests/test_console_i18n.py keeps this list whole.
SHARED_LABELS = (
    _l("已登记"), _l("待补材料"), _l("待报送"), _l("已装批"), _l("已报送市总"), _l("已核准"),
    _l("不予赔付"), _l("理赔金已到账"), _l("已通知领取"), _l("已安排现场理赔"), _l("已领取"),
    _l("已撤回"),
    _l("补交材料"), _l("要求补材料"), _l("审核通过"), _l("撤回"), _l("装批"), _l("报送市总"),
    _l("市总核准"), _l("市总不予赔付"), _l("市总退回补材料"), _l("理赔金到账"), _l("通知领取"),
    _l("安排现场理赔"), _l("领取"), _l("登记"),
    _l("住院医疗互助保障"), _l("意外伤害互助保障"), _l("重大疾病互助保障"),
    _l("女职工特殊疾病互助保障"),
    _l("互助金申请表"), _l("身份证复印件"), _l("医疗费用发票"), _l("医保结算单"), _l("出院小结"),
    _l("意外事故证明"), _l("伤残鉴定书"), _l("死亡证明"), _l("诊断证明书"), _l("病理报告"),
    _l("疾病"), _l("意外"),
    _l("不属于保障范围"), _l("等待期内出险"), _l("超过申请时效"), _l("出险时未参保或不在保障期内"),
    _l("重复申请"), _l("已领取过，限赔一次"), _l("不符合参保年龄条件"), _l("申请信息与材料不一致"),
    _l("费用金额需核实"), _l("需补伤残等级鉴定"), _l("缺少出院小结原件"),
    _l("缺少医疗费用发票原件"), _l("缺少医保结算单"), _l("缺少意外事故证明"),
    _l("缺少诊断证明或病理报告"), _l("材料复印件不清晰"), _l("身份证与参保信息不符"), _l("其他"),
    _l("登记到装批"), _l("装批到市总审核"), _l("到账到领取"),
    _l("春节"), _l("中秋节"),
    _l("出险日期不在该职工此险种的保障期内，核验时将不予通过。"),
    _l("伤残鉴定日期晚于产品规定的鉴定期限，估算未计伤残互助金，请核实。"),
    _l("未填伤残鉴定日期，无法核对是否在规定期限内鉴定。"),
    _l("该职工本年度此险种另有未决理赔，与本件估算合计超过年度剩余限额，以市总核准为准。"),
)


def select_locale() -> str:
    """`?lang=en` on any console page, else what the switch stored in the session, else zh."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    stored = session.get("lang")
    return stored if stored in LANGUAGES else DEFAULT_LANGUAGE


def init_i18n(app: Flask) -> None:
    """Flask-Babel for the console: msgids are Chinese, so Chinese is the default locale."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    babel.init_app(app, locale_selector=select_locale)


@console.before_request
def _remember_language() -> None:
    """The switch is a plain link (`?lang=en`): remembered for the rest of the session."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        session["lang"] = asked


@console.app_template_filter("t")
def translate(text: Any) -> str:
    """A label that comes from data (a state, an event, a document): translated if known."""
    return gettext(str(text)) if text else ""


@console.app_template_filter("reason")
def translate_reason(text: Any) -> str:
    """A reason as given: a coded reason's label (config/reasons.toml) translated if known,
    free text as the clerk typed it."""
    if not text:
        return ""
    reason = reasons_of(get_runtime()).find(str(text))
    return gettext(reason.label) if reason is not None and reason.label == str(text) else text


def _opens_with_get(path: str) -> bool:
    """Whether a console address answers a plain link (GET), not only a form's POST."""
    adapter = current_app.url_map.bind(request.host, script_name=request.script_root or None)
    try:
        adapter.match(path, method="GET")
    except HTTPException:  # 404, 405, and a redirect to the address with its slash
        return False
    return True


def switch_href(switch_to: str) -> str:
    """The language link: this page in the other language. A page answering a form's POST (a
    refused verify, a refused decisions sheet) has an address that takes POSTs only, so the
    link goes back to the page the form was on (the same-site Referer), else to the console
    home: a link is a GET."""
    if request.method == "GET":
        # The same page in the other language: a list keeps its filters and page.
        kept = [(key, value) for key, value in request.args.items(multi=True) if key != "lang"]
        return "?" + urlencode([*kept, ("lang", switch_to)])
    came_from = urlsplit(request.referrer or "")
    if (came_from.netloc == request.host and came_from.path.startswith("/console/")
            and _opens_with_get(came_from.path)):
        kept = [(key, value) for key, value in parse_qsl(came_from.query) if key != "lang"]
        return came_from.path + "?" + urlencode([*kept, ("lang", switch_to)])
    return url_for("console.home", lang=switch_to)


@console.context_processor
def page_languages() -> dict[str, Any]:
    """The header's language switch, and the page's language for <html lang>."""
    lang = str(get_locale() or DEFAULT_LANGUAGE)
    switch_to = "en" if lang == "zh" else "zh"
    return {"languages": LANGUAGES, "lang": lang,
            "html_lang": "zh-CN" if lang == "zh" else lang,
            "switch_to": switch_to, "switch_href": switch_href(switch_to)}
