"""Money received from the city office."""

from __future__ import annotations

from claims.api.base import Blueprint

blp = Blueprint("remittances", __name__, url_prefix="/api/v1/remittances", description="Money received from the city office")
