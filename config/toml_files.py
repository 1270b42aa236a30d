"""Configuration data files (TOML) read with one kind of error for whatever is wrong."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def read_toml(where: Path, error: type[Exception], what: str) -> dict[str, Any]:
    """The file's tables; `error` naming the file when it is missing or is not TOML."""
    try:
        with open(where, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as failure:
        raise error(f"{where}: cannot read the {what}: {failure}") from None
