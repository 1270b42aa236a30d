"""The manifest (报送清单, SPEC §4): XLSX and CSV streamed from one query, and a cover sheet."""

from __future__ import annotations

import csv
import hashlib
import html
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from claims.idcard import mask
from claims.models import Batch, Claim, Member, Unit
from claims.money import chinese_capital, format_fen
from claims.runtime import Runtime
from config.channels import ChannelSettings
from workflows.errors import Conflict
from workflows.xlsx_stream import PageSetup, Sheet, Workbook, csv_safe

log = logging.getLogger("mutualaid.batch")

# The manifest's columns (报送清单), in order: (key, Chinese header), the CSV's too. The XLSX
# adds DECISION_COLUMNS at the right, blank: the city office fills them in and sends the same
# file back as its decisions sheet (claims/schemas/payout.py finds the columns by header).
MANIFEST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("claim_no", "理赔编号"),
    ("unit", "单位"),
    ("member_name", "姓名"),
    ("id_number_masked", "身份证号"),
    ("product", "险种"),
    ("cause", "出险原因"),
    ("incident_date", "出险日期"),
    ("admission_date", "入院日期"),
    ("discharge_date", "出院日期"),
    ("total_expense", "医疗总费用"),
    ("insurance_paid", "医保支付"),
    ("self_paid", "个人自付"),
    ("estimate", "预估互助金"),
    ("documents", "材料"),
)
DECISION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("outcome", "审核结果"),  # approved / rejected / returned, or 核准 / 不予赔付 / 退回
    ("approved_amount", "核准金额"),
    ("reason", "原因"),
)
SHEET_COLUMNS = MANIFEST_COLUMNS + DECISION_COLUMNS  # the XLSX claims sheet's
# 审核结果 as the city office writes it (the decisions reader also takes the English outcome).
OUTCOME_LABELS: dict[str, str] = {"approved": "核准", "rejected": "不予赔付", "returned": "退回"}

TITLE = "职工互助保障理赔资料报送清单"
SHEET, COVER_SHEET = "报送清单", "封面"
CAUSES = {"illness": "疾病", "accident": "意外"}
SIGNATURES = ("经办人", "审核人", "县总工会（盖章）", "市总接收人")
TOTAL_LABEL = "合计"  # the totals row: no claim number, this in the unit column
_WIDTHS = (15, 24, 10, 21, 22, 8, 11, 11, 11, 12, 12, 12, 12, 28, 11, 12, 24)
# The list prints landscape on A4, as wide as one page, the header row on every page.
_MANIFEST_PAGE = PageSetup(landscape=True, fit_width=1, fit_height=0, repeat_header_rows=1,
                           footer="&C第 &P 页，共 &N 页")
_COVER_PAGE = PageSetup(fit_width=1, fit_height=1, center_horizontally=True, print_area=True)


@dataclass(frozen=True)
class ManifestFiles:
    xlsx: Path
    csv: Path
    cover: Path

    def all(self) -> tuple[Path, Path, Path]:
        return (self.xlsx, self.csv, self.cover)

    def exist(self) -> bool:
        return all(path.is_file() for path in self.all())

    def digest(self) -> str:
        """SHA-256 of the CSV: the same claims give the same digest, so a resend is recognisable."""
        sha = hashlib.sha256()
        with self.csv.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                sha.update(chunk)
        return sha.hexdigest()


@dataclass
class Totals:
    count: int = 0
    amounts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # expense .. estimate
    by_product: dict[str, list[int]] = field(default_factory=dict)  # name -> [count, estimate]


def manifest_dir(runtime: Runtime) -> Path:
    return runtime.settings.manifest_dir or runtime.settings.instance_path / "manifests"


def manifest_files(runtime: Runtime, batch_no: str) -> ManifestFiles:
    """Where the batch's manifest lives: <manifest dir>/<batch_no>/."""
    folder = manifest_dir(runtime) / batch_no
    return ManifestFiles(xlsx=folder / f"{SHEET}-{batch_no}.xlsx",
                         csv=folder / f"{SHEET}-{batch_no}.csv",
                         cover=folder / f"{COVER_SHEET}-{batch_no}.html")


def manifest_query(batch_id: int) -> sa.Select[Any]:
    """The manifest's rows as plain columns (no ORM objects), in the order claims were logged."""
    claim, member, unit = (t.__table__ for t in (Claim, Member, Unit))  # type: ignore[attr-defined]
    c = claim.c
    return (
        sa.select(c.claim_no, unit.c.name, member.c.name, member.c.id_number, c.product_code,
                  c.cause, c.incident_date, c.admission_date, c.discharge_date, c.total_expense,
                  c.insurance_paid, c.self_paid, c.estimate, sa.cast(c.documents, sa.Text))
        .select_from(claim.join(member, member.c.id == c.member_id)
                     .join(unit, unit.c.id == c.unit_id))
        .where(c.batch_id == batch_id)
        .order_by(c.id)
    )


def stream_rows(session: Session, batch_id: int) -> sa.CursorResult[Any]:
    """The manifest query's rows, fetched in chunks (a server-side cursor on PostgreSQL);
    use it in a `with` block so the cursor closes even when writing fails."""
    return session.connection().execute(manifest_query(batch_id).execution_options(yield_per=2000))


def summarise_documents(raw: str | None, names: dict[str, str]) -> str:
    """A claim's documents in a few words: 齐全（5项）, or what is missing or rejected."""
    docs = json.loads(raw) if raw else []
    missing = [names.get(d["code"], d["code"]) for d in docs if d.get("status") == "missing"]
    rejected = [names.get(d["code"], d["code"]) for d in docs if d.get("status") == "rejected"]
    if not missing and not rejected:
        return f"齐全（{len(docs)}项）"
    parts = [f"已收{len(docs) - len(missing) - len(rejected)}/{len(docs)}"]
    if missing:
        parts.append("缺：" + "、".join(missing))
    if rejected:
        parts.append("退回：" + "、".join(rejected))
    return "；".join(parts)


def csv_text(text: str) -> str:
    """A name or unit for the manifest's CSV, formula injection neutralised."""
    return csv_safe(text)


def week_label(week: str) -> str:
    """2026-W48 -> 2026年第48周（11月23日—11月29日）."""
    year, number = (int(part) for part in week.split("-W"))
    monday, sunday = date.fromisocalendar(year, number, 1), date.fromisocalendar(year, number, 7)
    return (f"{year}年第{number}周（{monday.month}月{monday.day}日—"
            f"{sunday.month}月{sunday.day}日）")


def write_manifest(session: Session, runtime: Runtime, batch: Batch) -> ManifestFiles:
    """Stream the batch's claims into its XLSX, CSV and cover; stamp batch.manifest_written_at.

    Call it in a write transaction. The files are written under temporary names and renamed
    only once the batch is known not to have changed meanwhile, so a crash never leaves a half
    manifest under the final name."""
    assert batch.id is not None
    files = manifest_files(runtime, batch.batch_no)
    files.xlsx.parent.mkdir(parents=True, exist_ok=True)
    partial = ManifestFiles(*(p.with_name(f".{p.name}.{os.getpid()}.part") for p in files.all()))
    try:
        totals = _write_files(session, runtime, batch, partial)
        digest = partial.digest()
        now = datetime.now(UTC)
        # The batch's membership only grows until it is delivered and only shrinks after, so an
        # unchanged claim count means the files hold exactly the batch's claims.
        stamped = session.execute(
            sa.update(Batch.__table__)  # type: ignore[attr-defined]
            .where(Batch.__table__.c.id == batch.id,  # type: ignore[attr-defined]
                   Batch.__table__.c.claim_count == totals.count)  # type: ignore[attr-defined]
            .values(manifest_written_at=now, manifest_digest=digest)
        )
        if stamped.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"Batch {batch.batch_no} changed while its manifest was written.",
                           code="batch_changed")
        for temporary, final in zip(partial.all(), files.all(), strict=True):
            os.replace(temporary, final)
        set_committed_value(batch, "manifest_written_at", now)
        set_committed_value(batch, "manifest_digest", digest)
    finally:
        for temporary in partial.all():
            temporary.unlink(missing_ok=True)
    return files


def manifest_on_disk(runtime: Runtime, batch: Batch) -> ManifestFiles | None:
    """The batch's manifest files when they are the ones this database wrote for it; None
    when missing, older than the batch, or someone else's: after a restore from backup, or
    with a manifest folder another database writes too, the files under a batch number can
    hold other claims (batches written before 0011 have no digest: their files are trusted)."""
    files = manifest_files(runtime, batch.batch_no)
    if batch.manifest_written_at is None or not files.exist():
        return None
    if batch.manifest_digest is not None and files.digest() != batch.manifest_digest:
        log.warning("manifest of batch %s on disk is not the one this database wrote; "
                    "writing it again from the database", batch.batch_no)
        return None
    return files


def current_manifest(session: Session, runtime: Runtime, batch: Batch) -> ManifestFiles:
    """The batch's manifest, written first if it is missing, older than the batch, or not the
    one this database wrote."""
    return manifest_on_disk(runtime, batch) or write_manifest(session, runtime, batch)


def _write_files(session: Session, runtime: Runtime, batch: Batch,
                 files: ManifestFiles) -> Totals:
    assert batch.id is not None
    sealed = batch.sealed_at.astimezone(runtime.settings.tz)
    office = ChannelSettings.from_env().county_office
    with Workbook(files.xlsx, (SHEET, COVER_SHEET), title=f"{TITLE} {batch.batch_no}",
                  created=sealed) as book:
        with (files.csv.open("w", encoding="utf-8-sig", newline="") as handle,
              stream_rows(session, batch.id) as rows,
              book.sheet(SHEET, widths=_WIDTHS, freeze_rows=1, page=_MANIFEST_PAGE) as sheet):
            totals = _write_rows(book, sheet, csv.writer(handle), runtime, rows)
        with book.sheet(COVER_SHEET, widths=(18, 20, 20, 20), page=_COVER_PAGE) as cover:
            _write_cover_sheet(book, cover, runtime, batch, totals, office)
    files.cover.write_text(cover_html(runtime, batch, totals, office), encoding="utf-8")
    return totals


def _write_rows(book: Workbook, sheet: Sheet, out: Any, runtime: Runtime,
                rows: Iterable[Any]) -> Totals:
    """The hot loop: one pass over the rows feeds the sheet and the CSV; totals on the way."""
    look = {"bold": True, "border": "all", "align": "center", "valign": "center", "wrap": True}
    header = book.style(fill="D9E1F2", **look)
    # The decision columns' header stands out: the city office writes there, and only there.
    to_fill = book.style(fill="FFF2CC", **look)
    money, day = book.style(number_format="0.00"), book.style(number_format="yyyy-mm-dd")
    bold = book.style(bold=True, border="top")
    bold_money = book.style(bold=True, border="top", number_format="0.00")
    headers = [title for _key, title in MANIFEST_COLUMNS]
    sheet.write_row(headers + [title for _key, title in DECISION_COLUMNS],
                    (header,) * len(MANIFEST_COLUMNS) + (to_fill,) * len(DECISION_COLUMNS))
    out.writerow(headers)  # the CSV is not read back (decisions come as .xlsx): claims only
    # The decision cells stay empty, boxed (where to write, on screen and on paper); the
    # amount's is formatted for when the city types one.
    box, box_money = book.style(border="all"), book.style(border="all", number_format="0.00")
    styles = (0, 0, 0, 0, 0, 0, day, day, day, money, money, money, money, 0, box, box_money, box)
    products = {code: p.name for code, p in runtime.catalogue.products.items()}
    names = runtime.catalogue.document_names
    summaries: dict[str | None, str] = {}  # most claims share their documents' JSON
    totals = Totals()
    amounts, by_product = totals.amounts, totals.by_product
    write_row, writerow = sheet.write_row, out.writerow
    count = 0
    for (claim_no, unit, member, id_number, product, cause, incident, admission, discharge,
         expense, insured, self_paid, estimate, documents) in rows:
        count += 1
        masked, product_name = mask(id_number) or "", products.get(product, product)
        cause_label = CAUSES.get(cause, cause)
        summary = summaries.get(documents)
        if summary is None:
            summary = summaries[documents] = summarise_documents(documents, names)
        # Text cells that look like formulas get the quote prefix in the sheet (the writer
        # does it for every text cell) and a leading apostrophe in the CSV.
        write_row((claim_no, unit, member, masked, product_name, cause_label, incident,
                   admission, discharge, expense / 100, insured / 100, self_paid / 100,
                   estimate / 100, summary, None, None, None), styles)
        writerow((claim_no, csv_text(unit), csv_text(member), masked, product_name, cause_label,
                  incident.isoformat(), admission.isoformat() if admission else "",
                  discharge.isoformat() if discharge else "", format_fen(expense),
                  format_fen(insured), format_fen(self_paid), format_fen(estimate), summary))
        amounts[0] += expense
        amounts[1] += insured
        amounts[2] += self_paid
        amounts[3] += estimate
        subtotal = by_product.get(product_name)
        if subtotal is None:
            subtotal = by_product[product_name] = [0, 0]
        subtotal[0] += 1
        subtotal[1] += estimate
    totals.count = count
    # The totals row: no claim number and blank decisions, so the decisions reader skips it.
    sheet.write_row((None, TOTAL_LABEL, f"{count}件", *[None] * 6, *(a / 100 for a in amounts),
                     None, None, None, None), (bold,) * 9 + (bold_money,) * 4 + (bold,) * 4)
    out.writerow(("", TOTAL_LABEL, f"{count}件", "", "", "", "", "", "",
                  *(format_fen(a) for a in amounts), ""))
    sheet.autofilter(1, 0, max(count + 1, 2), len(SHEET_COLUMNS) - 1)
    if count:  # 审核结果 is picked from a list, on the claim rows only
        outcome = len(MANIFEST_COLUMNS)
        sheet.dropdown(2, outcome, count + 1, outcome, tuple(OUTCOME_LABELS.values()),
                       title="审核结果",
                       error="请从列表中选择：" + "、".join(OUTCOME_LABELS.values())
                       + "；尚未审核的留空。")
    return totals


def _cover_lines(runtime: Runtime, batch: Batch, totals: Totals,
                 office: str) -> list[tuple[str, str]]:
    sealed = batch.sealed_at.astimezone(runtime.settings.tz).date()
    estimate = totals.amounts[3]
    return [
        ("报送单位", office),
        ("接收单位", runtime.settings.city_office),
        ("批次号", batch.batch_no),
        ("周次", week_label(batch.week)),
        ("装批日期", f"{sealed.year}年{sealed.month}月{sealed.day}日"),
        ("理赔件数", f"{totals.count}件"),
        ("预估互助金合计", f"{format_fen(estimate)}元（大写：{chinese_capital(estimate)}）"),
        ("医疗总费用合计", f"{format_fen(totals.amounts[0])}元"),
    ]


def _write_cover_sheet(book: Workbook, sheet: Sheet, runtime: Runtime, batch: Batch,
                       totals: Totals, office: str) -> None:
    """The printable cover (封面): who sends what to whom, subtotals, signature lines; one A4."""
    title = book.style(bold=True, size=18, align="center", valign="center")
    label = book.style(bold=True, border="all", valign="center")
    value = book.style(border="all", valign="center", wrap=True)
    head = book.style(bold=True, border="all", align="center", fill="D9E1F2")
    cell = book.style(border="all")
    money = book.style(border="all", number_format="0.00")
    sign = book.style(valign="bottom")
    row = sheet.write_row((TITLE, None, None, None), title, height=36)
    sheet.merge(row, 0, row, 3)
    sheet.skip()
    for name, text in _cover_lines(runtime, batch, totals, office):
        row = sheet.write_row((name, text, None, None), (label, value, value, value))
        sheet.merge(row, 1, row, 3)
    sheet.skip()
    sheet.write_row(("险种", "件数", "预估互助金（元）", "备注"), head)
    for name, (count, estimate) in sorted(totals.by_product.items()):
        sheet.write_row((name, count, estimate / 100, None), (cell, cell, money, cell))
    sheet.write_row((TOTAL_LABEL, totals.count, totals.amounts[3] / 100, None),
                    (head, cell, money, cell))
    sheet.skip()
    for who in SIGNATURES:
        sheet.write_row((f"{who}：", "____________________", "日期：_____年___月___日"), sign,
                        height=30)


def cover_html(runtime: Runtime, batch: Batch, totals: Totals, office: str) -> str:
    """The cover sheet as a printable HTML page (A4), for offices that print from a browser."""
    esc = html.escape
    lines = "".join(f"<tr><th>{esc(name)}</th><td>{esc(text)}</td></tr>"
                    for name, text in _cover_lines(runtime, batch, totals, office))
    products = "".join(
        f"<tr><td>{esc(name)}</td><td class=n>{count}</td><td class=n>{format_fen(amount)}</td>"
        "</tr>" for name, (count, amount) in sorted(totals.by_product.items()))
    signatures = "".join(
        f"<p class=sign>{esc(who)}：<span class=line></span>日期：<span class=date></span>年"
        "<span class=d></span>月<span class=d></span>日</p>" for who in SIGNATURES)
    return (
        '<!doctype html><html lang="zh-CN"><meta charset="utf-8">'
        f"<title>{esc(TITLE)} {esc(batch.batch_no)}</title><style>"
        "@page{size:A4;margin:2cm}body{font-family:serif;max-width:17cm;margin:auto}"
        "h1{text-align:center;font-size:22pt}table{width:100%;border-collapse:collapse;"
        "margin:1em 0}th,td{border:1px solid #000;padding:.4em;text-align:left}"
        ".n{text-align:right}.sign{margin:1.6em 0}.line{display:inline-block;width:6cm;"
        "border-bottom:1px solid #000;margin-right:1em}.date,.d{display:inline-block;"
        "border-bottom:1px solid #000;width:1.5cm}.d{width:.8cm}</style>"
        f"<h1>{esc(TITLE)}</h1><table>{lines}</table>"
        "<table><tr><th>险种</th><th>件数</th><th>预估互助金（元）</th></tr>"
        f"{products}<tr><th>{TOTAL_LABEL}</th><td class=n>{totals.count}</td>"
        f"<td class=n>{format_fen(totals.amounts[3])}</td></tr></table>"
        f"{signatures}</html>\n"
    )
