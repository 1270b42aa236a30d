"""Charts for the reports page: SVG drawn on the server by pygal, inlined into the page.

No JavaScript and no CDN: pygal's tooltip script is dropped, and its stylesheet (inside the
SVG) carries the page's CSP nonce, so the console's policy stays "nothing inline but this".
Labels pass through pygal's XML writer, so a unit's name is text, never markup. Axis labels and
legends are in the console's language (Flask-Babel), as the rest of the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pygal
from flask_babel import gettext as _
from markupsafe import Markup
from pygal.style import Style

FONT = '"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei","PingFang SC",sans-serif'
STYLE = Style(
    font_family=FONT, label_font_family=FONT, major_label_font_family=FONT,
    value_font_family=FONT, title_font_family=FONT, legend_font_family=FONT,
    background="#ffffff", plot_background="#ffffff", foreground="#333333",
    foreground_strong="#111111", foreground_subtle="#dddddd",
    colors=("#1f5fa8", "#d9822b", "#2e8b57", "#8e44ad"),
    title_font_size=15, legend_font_size=12, label_font_size=11, major_label_font_size=11,
)
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# Only the (scripted) tooltip has a style attribute, which the CSP would refuse: dropped.
_STYLE_ATTRIBUTE = re.compile(r' style="[^"]*"')


def _config(**options: Any) -> dict[str, Any]:
    return {"style": STYLE, "js": [], "disable_xml_declaration": True, "explicit_size": False,
            "no_data_text": _("暂无数据"), "legend_at_bottom": True, "margin": 12,
            "value_formatter": _whole, "truncate_label": -1, **options}


def _whole(value: float | None) -> str:
    """Axis labels and values as whole numbers with thousands separators."""
    return "" if value is None else f"{value:,.0f}"


def inline(chart: Any, nonce: str) -> Markup:
    """The chart as inline SVG: no script, its stylesheet under the page's CSP nonce."""
    svg = chart.render(is_unicode=True)
    svg = _STYLE_ATTRIBUTE.sub("", _COMMENT.sub("", _SCRIPT.sub("", svg)))
    svg = svg.replace("<style", f'<style nonce="{nonce}"', 1)
    return Markup(svg)  # noqa: S704 - pygal's own XML writer escaped every label


def _week_label(week: str) -> str:
    return _("第%(week)s周", week=week.split("-W")[1].lstrip("0"))


def _labels(weeks: Sequence[str]) -> list[str]:
    return [_week_label(w) for w in weeks]


def count_ticks(values: Sequence[int]) -> list[int]:
    """Whole-number ticks from 0 past the largest count, about five of them: left to itself
    the chart ticks 0.25, 0.5, ... for small counts, which read 0 0 0 1 1 as whole numbers."""
    top = max(values, default=0) or 1
    step = -(-top // 5)  # ceiling
    return list(range(0, top + step, step))


def claims_and_payouts(weekly: list[dict[str, Any]], title: str, nonce: str) -> Markup:
    """Bars: claims logged per week; line: yuan paid out per week (second axis)."""
    counts = [w["claims"] for w in weekly]
    chart = pygal.Bar(**_config(title=title, width=900, height=320, x_label_rotation=0,
                                show_minor_x_labels=False, x_labels_major_every=4,
                                y_labels=count_ticks(counts)))
    chart.x_labels = _labels([w["week"] for w in weekly])
    chart.add(_("登记件数"), counts)
    chart.add(_("兑付金额（元）"), [round(w["paid"] / 100) for w in weekly], secondary=True)
    return inline(chart, nonce)


def turnaround_trend(stages: list[dict[str, Any]], title: str, nonce: str) -> Markup:
    """Lines: each stage's median days, week by week."""
    weeks = sorted({w["week"] for stage in stages for w in stage["weeks"]})
    chart = pygal.Line(**_config(title=title, width=900, height=300, show_minor_x_labels=False,
                                 x_labels_major_every=max(1, len(weeks) // 12),
                                 allow_interruptions=True, dots_size=3))
    chart.x_labels = _labels(weeks)
    for stage in stages:
        by_week = {w["week"]: w["median_days"] for w in stage["weeks"]}
        name = stage["label"]  # workflows.turnaround's, in SHARED_LABELS
        chart.add(_("%(stage)s（中位天数）", stage=_(name)), [by_week.get(week) for week in weeks])
    return inline(chart, nonce)


def enrolment_rates(units: list[dict[str, Any]], title: str, nonce: str) -> Markup:
    """Horizontal bars: each unit's enrolment rate, in percent."""
    chart = pygal.HorizontalBar(**_config(
        title=title, width=900, height=max(220, 60 + 17 * len(units)), show_legend=False,
        range=(0, 100), print_values=False))
    chart.x_labels = [f"{u['unit_code']} {u['unit_name']}"[:24] for u in reversed(units)]
    chart.add(_("参保率（%）"), [None if u["enrolment_rate"] is None
                              else round(u["enrolment_rate"] * 100, 1) for u in reversed(units)])
    return inline(chart, nonce)
