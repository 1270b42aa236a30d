"""Weekly batches to the city office."""

from __future__ import annotations

from claims.api.base import Blueprint

blp = Blueprint("batches", __name__, url_prefix="/api/v1/batches", description="Weekly batches to the city office")
