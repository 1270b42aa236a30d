"""The notification templates: one text file per message under config/templates/notifications."""

from __future__ import annotations

from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "notifications"


def template_names() -> tuple[str, ...]:
    """The names a notification's `template` may take (the files' stems), sorted."""
    return tuple(sorted(path.stem for path in TEMPLATE_DIR.glob("*.txt")))
