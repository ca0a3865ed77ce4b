"""Finding ``go`` and ``dlv`` and checking their versions."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from .errors import GoleakError

MIN_GO_MINOR = 22
DELVE_VERSION = "1.27.2"
# scripts/setup.sh installs the pinned Delve here in a source checkout.
PROJECT_BIN = Path(__file__).resolve().parent.parent / ".tools" / "bin"


def find_go(configured: str = "") -> str:
    """The ``go`` command: ``%config GoleakMagics.go``, else ``go`` on PATH."""
    exe = shutil.which(configured or "go")
    if exe is None:
        raise GoleakError(
            f"'{configured or 'go'}' was not found; install Go 1.{MIN_GO_MINOR} or newer, put it "
            "on PATH (or set %config GoleakMagics.go) and run this again."
        )
    return exe


def parse_go_version(text: str) -> tuple[int, int] | None:
    m = re.search(r"go1\.(\d+)(?:\.(\d+))?", text)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


@functools.cache
def go_version(go: str, toolchain: str = "") -> str:
    """``go env GOVERSION`` (e.g. ``go1.26.8``), honouring ``GOTOOLCHAIN``."""
    env = dict(os.environ)
    if toolchain:
        env["GOTOOLCHAIN"] = toolchain
    try:
        out = subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, timeout=300, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GoleakError(
            f"running '{go} env GOVERSION' failed ({e}); check your Go install."
        ) from e
    version = out.stdout.strip()
    if out.returncode != 0 or parse_go_version(version) is None:
        first = (out.stderr.strip().splitlines() or ["no output"])[0]
        raise GoleakError(f"'{go} env GOVERSION' failed: {first}; check your Go install.")
    return version


def check_go(go: str, toolchain: str | None = None) -> str:
    """The Go version (of ``toolchain``, by default $GOTOOLCHAIN), or a GoleakError if it is
    older than we support."""
    if toolchain is None:
        toolchain = os.environ.get("GOTOOLCHAIN", "")
    version = go_version(go, toolchain)
    minor = parse_go_version(version)[0]  # type: ignore[index]
    if minor < MIN_GO_MINOR:
        raise GoleakError(
            f"{go} is {version}; goleak_magic needs Go 1.{MIN_GO_MINOR} or newer, so install a "
            "newer Go (or set GOTOOLCHAIN=go1.26.0) and try again."
        )
    return version


def binary_go_version(path: str | Path, go: str) -> str | None:
    """The Go version a binary was built with (``go version BIN``), None if not Go."""
    try:
        out = subprocess.run([go, "version", str(path)], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    m = re.search(r":\s*(go1\.\S+)", out.stdout)
    return m.group(1) if m else None


def find_dlv(configured: str = "") -> str:
    """``dlv``: %config, ``$GOLEAK_DLV``, PATH, this checkout's .tools/bin, GOPATH/bin."""
    candidates = [configured, os.environ.get("GOLEAK_DLV", "")]
    for c in candidates:
        if c:
            exe = shutil.which(c)
            if exe is None:
                raise GoleakError(
                    f"dlv was set to '{c}' but that is not an executable; fix the path."
                )
            return exe
    exe = shutil.which("dlv") or shutil.which("dlv", path=str(PROJECT_BIN))
    if exe is None:
        try:
            gopath = subprocess.run(
                [find_go(), "env", "GOPATH"], capture_output=True, text=True, timeout=60
            ).stdout.strip()
        except GoleakError:
            gopath = ""
        for part in filter(None, gopath.split(os.pathsep)):
            exe = exe or shutil.which("dlv", path=str(Path(part) / "bin"))
    if exe is None:
        raise GoleakError(
            "dlv (Delve) was not found; run scripts/setup.sh (it installs Delve "
            f"v{DELVE_VERSION}) or set %config GoleakMagics.dlv to its path."
        )
    return exe


TRACECV = "tracecv"  # the execution-trace converter (goleak_magic/tracecv), a Go program


def find_tracecv(configured: str = "", go: str = "") -> str:
    """The trace converter: %config, ``$GOLEAK_TRACECV``, this checkout's .tools/bin
    (scripts/setup.sh builds it there), else built once from the shipped source into the
    user's cache (keyed by the source, so an upgrade rebuilds it)."""
    for c in (configured, os.environ.get("GOLEAK_TRACECV", "")):
        if c:
            exe = shutil.which(c)
            if exe is None:
                raise GoleakError(
                    f"the trace converter was set to '{c}' but that is not an executable; "
                    "fix the path (or unset it to build the shipped one)."
                )
            return exe
    exe = shutil.which(TRACECV, path=str(PROJECT_BIN))
    return exe or _build_tracecv(go or find_go())


def _build_tracecv(go: str) -> str:
    src = Path(__file__).resolve().parent / TRACECV
    digest = hashlib.sha256()
    for f in sorted(src.glob("*")):
        if f.is_file():
            digest.update(f.name.encode() + f.read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "goleak_magic"
    exe = cache / f"{TRACECV}-{digest.hexdigest()[:16]}"
    if exe.is_file():
        return str(exe)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = exe.with_name(f"{exe.name}.{os.getpid()}")
    try:
        out = subprocess.run(
            [go, "build", "-o", str(tmp), "."], cwd=src, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GoleakError(
            f"building the trace converter failed ({e}); run scripts/setup.sh."
        ) from e
    if out.returncode != 0:
        first = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise GoleakError(
            f"building the trace converter failed: {first}; run scripts/setup.sh (it needs "
            "the Go module proxy for golang.org/x/exp)."
        )
    tmp.replace(exe)  # atomic: a concurrent build never sees half a binary
    return str(exe)
