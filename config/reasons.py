"""Coded reasons (原因代码), loaded from TOML data (config/reasons.toml by default).

Like the catalogue, the table is data a county edits without a release. Unlike the catalogue
it is reread when the file changes (a stat per use), so a new reason needs no restart; a
file edited into an invalid state keeps the last good table and logs why.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from config.toml_files import read_toml

log = logging.getLogger("mutualaid.reasons")

DEFAULT_REASONS_FILE = Path(__file__).with_name("reasons.toml")
KINDS = ("reject", "return", "document", "other")
OTHER = "other"  # free text given without a code is stored under it
OTHER_LABEL = "其他"
# Which kinds of reason each event takes: the city office returns a claim for a document as
# often as for anything else, and the county asks for materials for the same reasons.
EVENT_KINDS: dict[str, tuple[str, ...]] = {
    "reject": ("reject", OTHER),
    "return": ("return", "document", OTHER),
    "request_materials": ("document", "return", OTHER),
}
_CODE = re.compile(r"^[a-z0-9_]{1,40}$")


class ReasonsError(ValueError):
    """The reasons file is not a valid table; the message names the entry and key."""


@dataclass(frozen=True)
class Reason:
    code: str
    label: str
    kind: str


@dataclass(frozen=True)
class ReasonTable:
    reasons: dict[str, Reason]  # in file order

    def get(self, code: str) -> Reason | None:
        return self.reasons.get(code)

    def find(self, text: str) -> Reason | None:
        """A reason by its code or, as a clerk may type it in a sheet, by its exact label."""
        text = text.strip()
        found = self.reasons.get(text) or self.reasons.get(text.lower())
        if found is not None:
            return found
        return next((r for r in self.reasons.values() if r.label == text), None)

    def label_of(self, code: str | None) -> str | None:
        """The label of a code; a code since removed from the file shows as itself."""
        if code is None:
            return None
        reason = self.reasons.get(code)
        return reason.label if reason else code

    def for_event(self, event: str) -> list[Reason]:
        """The reasons an event accepts, in file order."""
        kinds = EVENT_KINDS.get(event, ())
        return [r for r in self.reasons.values() if r.kind in kinds]


def load_reasons(path: str | Path | None = None) -> ReasonTable:
    """Read and check the reasons file; raises ReasonsError naming what is wrong."""
    where = Path(path or DEFAULT_REASONS_FILE)
    data = read_toml(where, ReasonsError, "reasons")
    reasons: dict[str, Reason] = {}
    for index, raw in enumerate(data.get("reasons", []), start=1):
        entry = f"{where}: reason {index}"
        if not isinstance(raw, dict):
            raise ReasonsError(f"{entry} must be a table with code, label and kind")
        unknown = sorted(set(raw) - {"code", "label", "kind"})
        if unknown:
            raise ReasonsError(f"{entry}: unknown key {unknown[0]!r}")
        code, label, kind = raw.get("code"), raw.get("label"), raw.get("kind")
        if not isinstance(code, str) or not _CODE.match(code):
            raise ReasonsError(f"{entry}: code must be 1-40 lower-case letters, digits or _")
        if code in reasons:
            raise ReasonsError(f"{entry}: code {code!r} appears twice")
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            raise ReasonsError(f"{entry} ({code}): label must be 1-200 characters")
        if kind not in KINDS:
            raise ReasonsError(f"{entry} ({code}): kind must be one of {', '.join(KINDS)}")
        if (code == OTHER) != (kind == OTHER):
            raise ReasonsError(f"{entry} ({code}): only the code {OTHER!r} has kind {OTHER!r}")
        reasons[code] = Reason(code=code, label=label.strip(), kind=kind)
    reasons.setdefault(OTHER, Reason(code=OTHER, label=OTHER_LABEL, kind=OTHER))
    return ReasonTable(reasons=reasons)


_loaded: dict[Path, tuple[int, ReasonTable]] = {}


@functools.lru_cache(maxsize=16)
def _resolved(path: str | Path) -> Path:
    return Path(path).resolve()  # a system call per folder on the way: once per path


def reason_table(path: str | Path | None = None) -> ReasonTable:
    """The table in the file, reread when the file changes; the last good one if it broke."""
    where = _resolved(path or DEFAULT_REASONS_FILE)
    try:
        stamp = where.stat().st_mtime_ns
    except OSError:
        stamp = -1
    cached = _loaded.get(where)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        table = load_reasons(where)
    except ReasonsError as error:
        if cached is None:
            raise
        log.error("reasons file invalid, keeping the last good table: %s", error)
        return cached[1]
    _loaded[where] = (stamp, table)
    return table
