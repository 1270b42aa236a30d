# Two commands a new user needs: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: install demo test lint format docs screenshots bench clean

$(BIN)/mutualaid: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/mutualaid

## The service on SQLite with a demo county, at http://127.0.0.1:$(PORT)/
demo: install
	$(BIN)/mutualaid db upgrade
	$(BIN)/mutualaid demo
	MUTUALAID_EMBED_SCHEDULER=$${MUTUALAID_EMBED_SCHEDULER:-1} $(BIN)/mutualaid serve --port $(PORT)

## The whole suite: SQLite, and PostgreSQL too when MUTUALAID_TEST_POSTGRES_URL is set
test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -n $${PYTEST_WORKERS:-2}

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .

## Regenerate docs drawn from code (the lifecycle diagram)
docs: install
	$(BIN)/python -m workflows.lifecycle > docs/lifecycle.md

## Refresh the README's pictures (docs/screenshots) from the browser tests
screenshots: install
	MUTUALAID_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -n $${PYTEST_WORKERS:-2} \
		tests/test_console_browser.py tests/test_status_page.py tests/test_reports.py

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .hypothesis
