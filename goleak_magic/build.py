"""Turning a TARGET spec into an executable: ``go build``, ``go test -c``, or a binary."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import GoleakError
from .tools import binary_go_version, check_go

EXAMPLE_PREFIX = "example:"
COMPILER_LINES = 8


def examples_dir() -> Path:
    return Path(str(resources.files("goleak_magic") / "examples"))


def example_names() -> list[str]:
    return sorted(p.name for p in examples_dir().iterdir() if (p / "main.go").is_file())


@dataclass
class Built:
    """What to exec, and how it came to be."""

    binary: Path
    kind: str  # "package", "file", "test", "example", "binary"
    spec: str
    source_dir: Path | None = None
    go_version: str | None = None
    build_cmd: list[str] = field(default_factory=list)


def resolve(spec: str, *, test: bool = False) -> tuple[str, Path, list[str]]:
    """(kind, directory to build in, package args) for a TARGET spec, or the binary path."""
    if spec.startswith(EXAMPLE_PREFIX):
        name = spec[len(EXAMPLE_PREFIX) :]
        if name not in example_names():
            raise GoleakError(
                f"there is no shipped example '{name}'; pick one of: {', '.join(example_names())}."
            )
        return "example", examples_dir(), ["./" + name]
    path = Path(spec).expanduser()
    if not path.exists():
        raise GoleakError(
            f"{spec} does not exist; give a Go package directory, a .go file, a built binary "
            "or example:NAME."
        )
    path = path.resolve()
    if path.is_dir():
        if not any(path.glob("*.go")):
            raise GoleakError(
                f"{spec} has no .go files; point %golaunch at the directory of a main package "
                "(or a .go file, or a binary)."
            )
        return ("test" if test else "package"), path, ["."]
    if path.suffix == ".go":
        if test:
            return "test", path.parent, ["."]
        return "file", path.parent, [path.name]
    if test:
        raise GoleakError(
            f"--test builds a package's tests; {spec} is not a directory or .go file."
        )
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"\x7fELF" or not os.access(path, os.X_OK):
        raise GoleakError(
            f"{spec} is neither a Go source nor an executable ELF binary; give a package "
            "directory, a .go file or a built binary."
        )
    return "binary", path, []


def build(
    spec: str,
    out_dir: Path,
    *,
    go: str,
    test: bool = False,
    overlay: Path | None = None,
    env: dict[str, str] | None = None,
) -> Built:
    """Build ``spec`` into ``out_dir`` (or check an existing binary)."""
    kind, where, pkg = resolve(spec, test=test)
    if kind == "binary":
        version = binary_go_version(where, go)
        if version is None:
            raise GoleakError(
                f"{spec} is not a Go binary ('go version' cannot read its build info); "
                "goleak_magic works on Go programs only."
            )
        return Built(where, kind, spec, None, version)
    go_ver = check_go(go)
    name = Path(pkg[0]).stem if kind in ("file", "example") else where.name
    binary = out_dir / f"{name or 'main'}-{len(list(out_dir.iterdir()))}"
    cmd = [go, "test", "-c"] if kind == "test" else [go, "build"]
    cmd += ["-o", str(binary)]
    if overlay is not None:
        cmd.append(f"-overlay={overlay}")
    cmd += pkg
    proc = subprocess.run(
        cmd, cwd=where, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("#")]
        more = len(lines) - COMPILER_LINES
        head = "; ".join(lines[:COMPILER_LINES]) or f"exit status {proc.returncode}"
        raise GoleakError(
            f"go build of {spec} failed: {head}"
            + (f" (+{more} more lines)" if more > 0 else "")
            + " — fix it and run %golaunch again."
        )
    return Built(binary, kind, spec, where, go_ver, cmd)
