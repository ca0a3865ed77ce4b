"""The README's commands on a stock Debian/Ubuntu machine: a fresh clone, Debian's own
``/usr/bin/python3`` (externally managed, PEP 668: pip refuses to install into it) first
on PATH, and no virtual environment or conda env active. The setup must then make and use
a project-local ``.venv``, and ``make lab`` must serve the tutorials from it. Go's caches
and pip's download cache are this machine's (for speed); the ``.venv`` is the clone's own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

from goleak_magic import process

from .conftest import wait_for
from .test_binder import ROOT, passed_through_env

SYSTEM_PY = Path("/usr/bin/python3")


def _debian_env(tmp_path: Path, python: Path = SYSTEM_PY) -> dict[str, str]:
    """No env active; ``python3`` on PATH is ``python``; the machine's go after it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(python)
    go = shutil.which("go")
    assert go, "go must be installed"
    path = [str(bin_dir), str(Path(go).parent), "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    shared = ("HOME", "GOPATH", "GOCACHE", "GOMODCACHE")
    return (
        passed_through_env()
        | {k: os.environ[k] for k in shared if k in os.environ}
        | {"PATH": os.pathsep.join(path)}
    )


def _run(argv: list[str | Path], cwd: Path, env: dict[str, str], log: Path) -> str:
    """Run ``argv``, keep its output in ``log``, fail with its tail unless it exits 0."""
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    log.write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_make_demo_then_test_setup_with_debians_python(tmp_path: Path, artifacts: Path) -> None:
    stdlib = subprocess.run(
        [SYSTEM_PY, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The situation of the issue: pip refuses this Python.
    assert (Path(stdlib) / "EXTERNALLY-MANAGED").is_file(), f"{SYSTEM_PY} is not Debian's"
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    env = _debian_env(tmp_path)

    out = _run(["make", "demo"], repo, env, artifacts / "debian-make-demo.log")
    assert re.search(r"^Leak suspect in \S+: goroutines started at ", out, re.M), out[-3000:]

    py = repo / ".tools" / "python"  # what the Makefile runs
    where = _run(
        [py, "-c", "import sys, goleak_magic; print(sys.prefix); print(goleak_magic.__file__)"],
        tmp_path,
        env,
        artifacts / "debian-where.log",
    ).split()
    assert where == [str(repo / ".venv"), str(repo / "goleak_magic" / "__init__.py")]
    untouched = subprocess.run([SYSTEM_PY, "-c", "import goleak_magic"], cwd=tmp_path, env=env)
    assert untouched.returncode != 0, "the package went into the system Python"

    # The setup part of `make test`, then its first step, from the same .venv.
    _run([repo / "scripts" / "setup.sh", "--test"], repo, env, artifacts / "debian-setup-test.log")
    _run(
        [py, "-m", "ruff", "check", "goleak_magic", "tests", "bench"],
        repo,
        env,
        artifacts / "debian-ruff.log",
    )
    imports = [py, "-c", "import pytest, nbclient, playwright"]
    _run(imports, repo, env, artifacts / "debian-imports.log")

    # `make lab`: JupyterLab from that .venv, listening on 127.0.0.1, on the tutorials.
    log = artifacts / "debian-make-lab.log"
    with log.open("wb") as out:  # BROWSER: no browser to open here
        lab = process.spawn(["make", "lab"], cwd=str(repo), env=env | {"BROWSER": "true"},
                            stdout=out, stderr=out)  # fmt: skip
    try:
        found = wait_for(
            lambda: re.search(r"http://127\.0\.0\.1:\d+/lab\?token=\w+", log.read_text()),
            timeout=120,
            what="make lab to print its address",
            show=lambda: log.read_text()[-2000:],
        )
        contents = found.group(0).replace("/lab?", "/api/contents?")
        with urllib.request.urlopen(contents, timeout=10) as r:
            names = {c["name"] for c in json.load(r)["content"]}
        assert "01-first-leak.ipynb" in names, names
    finally:
        process.terminate(lab, 10)


def test_missing_ensurepip_is_one_sentence(tmp_path: Path) -> None:
    # Debian without python3-venv: `import ensurepip` fails. Here a module of that name
    # that fails to import stands in for the missing package.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "ensurepip.py").write_text("raise ModuleNotFoundError('ensurepip')\n")
    python = tmp_path / "python3-without-venv"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={shadow} exec {SYSTEM_PY} "$@"\n')
    python.chmod(0o755)
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")

    proc = subprocess.run(
        [repo / "scripts" / "setup.sh"],
        env=_debian_env(tmp_path, python),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "ensurepip module is missing" in proc.stderr
    assert "'apt-get install python3-venv'" in proc.stderr
    assert not (repo / ".venv").exists()
