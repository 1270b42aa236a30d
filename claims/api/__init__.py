"""The REST API under /api/v1: one flask-smorest blueprint per resource."""

from __future__ import annotations

from flask import Flask, request

from claims.api.base import Api


def init_api(app: Flask) -> Api:
    from claims.api import (
        auth,
        batches,
        claims,
        decisions,
        enrolments,
        jobs,
        members,
        notifications,
        products,
        reasons,
        reconciliation,
        remittances,
        reports,
        roster,
        status,
        units,
        visits,
    )
    from claims.api.document import ErrorAnswers, typed_fields
    from claims.api.security import authenticate

    api = Api(app, spec_kwargs={"extra_plugins": [ErrorAnswers(app)]})
    api.ma_plugin.converter.add_attribute_function(typed_fields)  # type: ignore[union-attr]
    modules = (auth, units, members, products, enrolments, claims, batches, decisions,
               remittances, notifications, jobs, status, roster, visits, reports, reasons,
               reconciliation)
    names = {module.blp.name for module in modules}
    for module in modules:
        api.register_blueprint(module.blp)

    @app.before_request
    def _authenticate_api() -> None:
        if request.blueprint in names:
            authenticate()

    return api
