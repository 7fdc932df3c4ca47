# The two commands of the README.
.PHONY: demo test lint

demo:
	@scripts/bootstrap.sh
	@.venv/bin/smartpos demo

test:
	@scripts/test.sh

lint:
	@scripts/bootstrap.sh dev
	.venv/bin/ruff check smartpos tests && .venv/bin/mypy
