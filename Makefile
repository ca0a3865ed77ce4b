# The two commands of the README. Both install what they need first.
PYTHON ?= python3

.PHONY: demo test lint
demo:
	scripts/setup.sh
	$(PYTHON) -m goleak_magic demo

test:
	scripts/setup.sh --test
	$(PYTHON) -m ruff check goleak_magic tests bench
	$(PYTHON) -m ruff format --check goleak_magic tests bench
	$(PYTHON) -m pytest -v --durations=25

lint:
	$(PYTHON) -m ruff check --fix goleak_magic tests bench
	$(PYTHON) -m ruff format goleak_magic tests bench
