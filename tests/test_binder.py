"""The Binder path, exercised: binder/postBuild on a clean environment, then notebook 01.

repo2docker cannot run here, so this does what it does, minus conda: a copy of the
committed tree, a fresh Python (venv, no site packages) standing in for the conda env of
binder/environment.yml, the machine's Go standing in for conda-forge's, and fresh HOME,
GOPATH, GOMODCACHE and GOCACHE. postBuild must then install everything (Delve built from
the Go module proxy, the package and JupyterLab from PyPI), and notebook 01 must run with
that environment's kernel, against the copy's own examples and its own dlv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from goleak_magic.tools import DELVE_VERSION

from . import nbrun

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parent.parent
PASS_THROUGH = ("LANG", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def passed_through_env() -> dict[str, str]:
    """What a clean environment keeps of this one: locale, certificates, pip's settings."""
    return {k: v for k, v in os.environ.items() if k in PASS_THROUGH or k.startswith("PIP_")}


def _copy_tree(dst: Path) -> None:
    """The files git tracks, as a fresh checkout has them (no .tools, no caches)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def test_postbuild_on_a_clean_environment_then_notebook_01(tmp_path: Path, artifacts: Path) -> None:
    repo, home, venv = tmp_path / "repo", tmp_path / "home", tmp_path / "venv"
    gopath = tmp_path / "gopath"
    home.mkdir()
    _copy_tree(repo)
    assert not (repo / ".tools").exists()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)

    go = shutil.which("go")
    assert go, "go must be installed (it stands in for binder/environment.yml's conda-forge go)"
    env = passed_through_env() | {
        "PATH": os.pathsep.join([str(venv / "bin"), str(Path(go).parent), "/usr/bin", "/bin"]),
        "HOME": str(home),
        "GOPATH": str(gopath),
        "GOMODCACHE": str(gopath / "pkg" / "mod"),
        "GOCACHE": str(home / ".cache" / "go-build"),
    }
    build = subprocess.run(
        [str(repo / "binder" / "postBuild")],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    (artifacts / "binder-postBuild.log").write_text(build.stdout + build.stderr)
    assert build.returncode == 0, build.stderr[-4000:]
    assert not (repo / ".venv").exists()  # setup used the active env, as in Binder's conda env

    config = (home / ".jupyter" / "jupyter_server_config.py").read_text()
    start = re.search(r'default_url = "/lab/tree/(.+)"', config)
    assert start and (repo / start.group(1)).is_file(), config  # JupyterLab, on notebook 01

    py = str(venv / "bin" / "python")
    where = subprocess.run(
        [py, "-c", "import goleak_magic.tools as t; print(t.__file__); print(t.find_dlv())"],
        env=env,
        cwd=tmp_path,  # not this checkout: the import must come from the copy
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where == [str(repo / "goleak_magic" / "tools.py"), str(repo / ".tools" / "bin" / "dlv")]
    version = subprocess.run([where[1], "version"], capture_output=True, text=True).stdout
    assert f"Version: {DELVE_VERSION}" in version

    seconds = nbrun.run(
        py,
        repo / "notebooks" / "01-first-leak.ipynb",
        artifacts / "binder-01-first-leak.executed.ipynb",
        env=env,
    )
    with open(artifacts / "notebook-seconds.txt", "a") as f:
        f.write(f"binder 01-first-leak\t{seconds:.1f}\t(budget {nbrun.BUDGET_S} s)\n")
