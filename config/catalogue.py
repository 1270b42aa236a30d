"""The product catalogue, loaded from TOML data (config/products.toml by default)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from claims.money import yuan_to_fen
from config.toml_files import read_toml

DEFAULT_PRODUCTS_FILE = Path(__file__).with_name("products.toml")
CONDITIONS = ("always", "medical", "disability", "death", "not_death")
BENEFIT_TYPES = ("expense", "grade", "fixed", "lump_sum")
CAP_PERIODS = ("year", "claim", "lifetime")


class CatalogueError(ValueError):
    """The product file is not a valid catalogue; the message names the product and key."""


@dataclass(frozen=True)
class Benefit:
    """One component of a product's benefit, amounts in fen per share."""

    type: str
    when: str = "always"
    base: str = "self_paid"
    deductible: int = 0
    ratio: Decimal = Decimal(1)
    cap: int | None = None
    cap_period: str = "claim"
    sum_insured: int = 0
    percent: tuple[int, ...] = ()
    amount: int = 0

    def as_rule(self) -> dict[str, Any]:
        """The component as the API shows it (amounts in yuan strings)."""
        from claims.money import format_fen

        rule: dict[str, Any] = {"type": self.type, "when": self.when}
        if self.type == "expense":
            rule |= {
                "base": self.base,
                "deductible": format_fen(self.deductible),
                "ratio": str(self.ratio),
                "cap": format_fen(self.cap),
                "cap_period": self.cap_period,
            }
        elif self.type == "grade":
            rule |= {"sum_insured": format_fen(self.sum_insured), "percent": list(self.percent)}
        else:
            rule |= {"amount": format_fen(self.amount)}
            if self.type == "lump_sum":
                rule["cap_period"] = "lifetime"
        return rule


@dataclass(frozen=True)
class Product:
    code: str
    name: str
    kind: str
    premium_per_share: int
    max_shares: int
    waiting_days: int
    claim_deadline_days: int
    deadline_from: str
    needs_stay: bool
    benefits: tuple[Benefit, ...]
    required_documents: tuple[str, ...]
    conditional_documents: dict[str, str] = field(default_factory=dict)
    causes: tuple[str, ...] = ("illness", "accident")
    min_age: int | None = None
    max_age: int | None = None
    sex: str | None = None
    min_enrolment_share: Decimal = Decimal(0)
    small_unit_size: int = 0
    disability_assessment_days: int | None = None

    @property
    def document_codes(self) -> tuple[str, ...]:
        return self.required_documents + tuple(self.conditional_documents)


@dataclass(frozen=True)
class Catalogue:
    products: dict[str, Product]
    document_names: dict[str, str]

    def get(self, code: str) -> Product | None:
        return self.products.get(code)


def _benefit(code: str, raw: dict[str, Any]) -> Benefit:
    kind = raw.get("type")
    if kind not in BENEFIT_TYPES:
        raise CatalogueError(f"{code}: benefit type must be one of {BENEFIT_TYPES}")
    when = raw.get("when", "always")
    if when not in CONDITIONS:
        raise CatalogueError(f"{code}: benefit 'when' must be one of {CONDITIONS}")
    cap_period = raw.get("cap_period", "lifetime" if kind == "lump_sum" else "claim")
    if cap_period not in CAP_PERIODS:
        raise CatalogueError(f"{code}: cap_period must be one of {CAP_PERIODS}")
    percent = tuple(int(p) for p in raw.get("percent", ()))
    if kind == "grade" and len(percent) != 10:
        raise CatalogueError(f"{code}: a grade table needs 10 percentages (grade 1 to 10)")
    return Benefit(
        type=kind,
        when=when,
        base=raw.get("base", "self_paid"),
        deductible=yuan_to_fen(raw.get("deductible", "0")),
        ratio=Decimal(str(raw.get("ratio", "1"))),
        cap=yuan_to_fen(raw["cap"]) if "cap" in raw else None,
        cap_period=cap_period,
        sum_insured=yuan_to_fen(raw.get("sum_insured", "0")),
        percent=percent,
        amount=yuan_to_fen(raw.get("amount", "0")),
    )


def _product(code: str, raw: dict[str, Any]) -> Product:
    try:
        conditional = dict(raw.get("conditional_documents", {}))
        for doc, condition in conditional.items():
            if condition not in CONDITIONS:
                raise CatalogueError(f"{code}: document {doc} has unknown condition {condition}")
        return Product(
            code=code,
            name=raw["name"],
            kind=raw["kind"],
            premium_per_share=yuan_to_fen(raw["premium_per_share"]),
            max_shares=int(raw.get("max_shares", 1)),
            waiting_days=int(raw.get("waiting_days", 0)),
            claim_deadline_days=int(raw["claim_deadline_days"]),
            deadline_from=raw.get("deadline_from", "incident"),
            needs_stay=bool(raw.get("needs_stay", False)),
            benefits=tuple(_benefit(code, b) for b in raw.get("benefits", [])),
            required_documents=tuple(raw.get("required_documents", [])),
            conditional_documents=conditional,
            causes=tuple(raw.get("causes", ("illness", "accident"))),
            min_age=raw.get("min_age"),
            max_age=raw.get("max_age"),
            sex=raw.get("sex"),
            min_enrolment_share=Decimal(str(raw.get("min_enrolment_share", "0"))),
            small_unit_size=int(raw.get("small_unit_size", 0)),
            disability_assessment_days=raw.get("disability_assessment_days"),
        )
    except KeyError as missing:
        raise CatalogueError(f"{code}: missing key {missing}") from None


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and check the catalogue file; raises CatalogueError naming what is wrong."""
    where = Path(path or DEFAULT_PRODUCTS_FILE)
    data = read_toml(where, CatalogueError, "catalogue")
    try:
        products = {code: _product(code, raw) for code, raw in data.get("products", {}).items()}
    except CatalogueError:
        raise
    except (ValueError, TypeError, AttributeError) as error:  # an amount or a table mistyped
        raise CatalogueError(f"{where}: {error}") from None
    if not products:
        raise CatalogueError("the catalogue has no products")
    return Catalogue(products=products, document_names=dict(data.get("documents", {})))
