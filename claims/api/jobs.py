"""Scheduled jobs and their runs."""

from __future__ import annotations

from claims.api.base import Blueprint

blp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs", description="Scheduled jobs and their runs")
