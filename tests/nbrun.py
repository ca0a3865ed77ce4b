"""Execute one notebook headless, as CI and Binder users do: ``python tests/nbrun.py NB OUT``.

Run with the Python whose kernel should execute it (the test's, or a fresh Binder-like
venv's). Exits 1 with the failing cell's error on any cell error; prints the seconds taken.
Tests call :func:`run`, which starts this file as a script under the chosen Python.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

CELL_TIMEOUT_S = 170
BUDGET_S = 180  # a tutorial runs top to bottom in 3 minutes


def run(python: str, notebook: Path, out: Path, env: dict[str, str] | None = None) -> float:
    """Execute ``notebook`` with ``python``'s kernel into ``out``; return the seconds taken."""
    proc = subprocess.run(
        [python, __file__, str(notebook), str(out)],
        capture_output=True,
        text=True,
        timeout=BUDGET_S + 120,
        env=env,
    )
    assert proc.returncode == 0, (
        f"{notebook.name} failed (executed copy: {out}):\n{proc.stderr[-6000:]}"
    )
    found = re.search(r"seconds=([\d.]+)", proc.stdout)
    assert found, proc.stdout[-2000:]
    return float(found.group(1))


def main(src: str, out: str) -> int:
    path = Path(src).resolve()
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.monotonic()
    try:
        client.execute()
    except CellExecutionError as e:
        print(f"{path.name}: a cell failed:\n{e}", file=sys.stderr)
        return 1
    finally:
        nbformat.write(nb, out)
    print(f"seconds={time.monotonic() - start:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
