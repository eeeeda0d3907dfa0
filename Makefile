# The two commands a new user needs are `make demo` and `make test`; the rest are shortcuts.
.PHONY: install up down status demo test lint lock-check

LAE := .venv/bin/lae

install:
	@bash scripts/bootstrap.sh

up: install
	@$(LAE) stack up

down:
	@$(LAE) stack down

status:
	@$(LAE) stack status

demo: install
	@$(LAE) demo

test: install
	@bash scripts/test.sh

lint: install
	@.venv/bin/ruff check .

lock-check:
	@.lae/tools/bin/uv lock --check
