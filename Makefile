# The two commands of the README (and `make lab`). Each installs what it needs first.
# scripts/setup.sh chooses the Python (the active venv or conda env, else a project-local
# .venv) and leaves .tools/python to run it, so every recipe uses that one interpreter.
PY := .tools/python

.PHONY: demo test lint lab
demo:
	scripts/setup.sh
	$(PY) -m goleak_magic demo

test:
	scripts/setup.sh --test
	$(PY) -m ruff check goleak_magic tests bench
	$(PY) -m ruff format --check goleak_magic tests bench
	$(PY) -m pytest -v --durations=25

lint:
	@$(PY) -c 'import ruff' 2>/dev/null || { echo "make lint: ruff is not installed yet; run 'make test' once (it installs the test tools)." >&2; exit 1; }
	$(PY) -m ruff check --fix goleak_magic tests bench
	$(PY) -m ruff format goleak_magic tests bench

# JupyterLab on this machine only, opened on the tutorials (as root, e.g. in a container,
# Jupyter wants --allow-root).
lab:
	scripts/setup.sh
	$(PY) -m jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks \
	  $(if $(filter 0,$(shell id -u)),--allow-root)
