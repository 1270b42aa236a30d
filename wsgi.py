"""WSGI entry point: gunicorn wsgi:app, or flask --app wsgi.py run."""

from gunicorn.errors import AppImportError

from claims.app import create_app
from claims.cli import START_ERRORS, start_error

try:
    app = create_app()
except START_ERRORS as error:
    # gunicorn prints this one line, not a traceback, and stops rather than booting more
    # workers that would fail the same way (as `mutualaid serve` does).
    raise AppImportError(f"Error: {start_error(error)}") from None
