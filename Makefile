# The two commands of the README: `make run` and `make test`. Both set everything up first.
.PHONY: setup run test test-unit lint bench

setup:
	bash scripts/setup.sh

run: setup
	.venv/bin/sigma up

test: setup
	.venv/bin/python -m pytest

test-unit: setup
	.venv/bin/python -m pytest -m "not e2e"

lint: setup
	.venv/bin/ruff check src tests
	.venv/bin/mypy

bench: setup
	.venv/bin/sigma bench scheduler --json
	.venv/bin/sigma bench api --json
