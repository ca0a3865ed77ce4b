"""Every tutorial notebook runs top to bottom, headless, on real Go programs and real dlv;
the committed notebooks carry no stale outputs. How long each took (the tutorials' budget
is 3 minutes) goes to test-artifacts/notebook-seconds.txt: tests check behaviour, not
timings."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from . import nbrun

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = [
    "01-first-leak",
    "02-leak-patterns",
    "03-spike-to-root-cause",
    "04-attach-to-a-running-service",
    "05-write-up",
    "06-fleet",
    "07-leaks-in-tests",
]


def test_the_tutorials_are_all_there_without_outputs() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED
    for name in EXPECTED:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), name
        prose = sum(len(c.source) for c in nb.cells if c.cell_type == "markdown")
        assert prose > sum(len(c.source) for c in code), f"{name} should teach, not only run"


@pytest.mark.live
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_top_to_bottom(name: str, artifacts: Path) -> None:
    notebook = NOTEBOOKS / f"{name}.ipynb"
    seconds = nbrun.run(sys.executable, notebook, artifacts / f"{name}.executed.ipynb")
    with open(artifacts / "notebook-seconds.txt", "a") as f:
        f.write(f"{name}\t{seconds:.1f}\t(budget {nbrun.BUDGET_S} s)\n")
