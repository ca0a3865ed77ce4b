"""The execution-trace tests' shared piece: a real ``go test -trace`` of a tiny package."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from goleak_magic.tools import find_go


def go_line(path: Path, pattern: str) -> int:
    """The number of the one line of ``path`` that matches the regexp ``pattern`` (a go
    statement: where a trace's creations must point)."""
    hits = [i for i, ln in enumerate(path.read_text().splitlines(), 1) if re.search(pattern, ln)]
    assert len(hits) == 1, hits
    return hits[0]


def workers_test_trace(tmp_path: Path) -> tuple[Path, Path]:
    """(the package, its trace): module ``tracedtest``, whose TestWorkers starts seven
    goroutines at the line marked ``// the workers`` and waits for them, run with
    ``go test -trace`` by the Go on PATH (the ``toolchain`` fixture picks it)."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "go.mod").write_text("module tracedtest\n\ngo 1.22\n")
    (pkg / "w_test.go").write_text(
        'package w\n\nimport (\n\t"sync"\n\t"testing"\n)\n\n'
        "func TestWorkers(t *testing.T) {\n\tvar wg sync.WaitGroup\n"
        "\tfor i := 0; i < 7; i++ {\n\t\twg.Add(1)\n"
        "\t\tgo func() { defer wg.Done() }() // the workers\n\t}\n\twg.Wait()\n}\n"
    )
    out = tmp_path / "test.trace"
    subprocess.run(
        [find_go(), "test", "-count=1", f"-trace={out}", "."], cwd=pkg, check=True,
        capture_output=True, timeout=300,
    )  # fmt: skip
    return pkg, out
