"""Products (险种): the catalogue from config/products.toml."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Page, abort

from claims.api.base import Blueprint
from claims.api.security import ANY_STAFF
from claims.money import format_fen
from claims.runtime import get_runtime
from claims.schemas.common import QuerySchema
from claims.schemas.products import ProductSchema
from config.catalogue import Product

blp = Blueprint("products", __name__, url_prefix="/api/v1/products", description="Catalogue")


def product_view(product: Product, names: dict[str, str]) -> dict[str, Any]:
    codes = product.document_codes
    return {
        "code": product.code,
        "name": product.name,
        "kind": product.kind,
        "premium_per_share": format_fen(product.premium_per_share),
        "max_shares": product.max_shares,
        "waiting_days": product.waiting_days,
        "claim_deadline_days": product.claim_deadline_days,
        "deadline_from": product.deadline_from,
        "causes": list(product.causes),
        "min_age": product.min_age,
        "max_age": product.max_age,
        "sex": product.sex,
        "disability_assessment_days": product.disability_assessment_days,
        "rules": [benefit.as_rule() for benefit in product.benefits],
        "required_documents": list(product.required_documents),
        "conditional_documents": dict(product.conditional_documents),
        "document_names": {code: names.get(code, code) for code in codes},
    }


@blp.route("")
class ProductsView(MethodView):
    @ANY_STAFF
    @blp.arguments(QuerySchema, location="query")
    @blp.response(200, ProductSchema(many=True))
    @blp.paginate(Page)  # slices the list, counts it for X-Pagination
    def get(self, _filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Every product with its rules and documents, paginated like every list."""
        catalogue = get_runtime().catalogue
        return [product_view(p, catalogue.document_names) for p in catalogue.products.values()]


@blp.route("/<string:code>")
class ProductView(MethodView):
    @ANY_STAFF
    @blp.response(200, ProductSchema)
    def get(self, code: str) -> dict[str, Any]:
        """One product."""
        catalogue = get_runtime().catalogue
        product = catalogue.get(code)
        if product is None:
            abort(404, message="No such product.")
        return product_view(product, catalogue.document_names)
