"""WSGI entry point: gunicorn wsgi:app, or flask --app wsgi.py run."""

from claims.app import create_app

app = create_app()
