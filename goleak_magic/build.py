"""Turning a TARGET spec into an executable: ``go build``, ``go test -c``, or a binary."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from . import agent as agent_mod
from .agent import testmain
from .errors import GoleakError
from .tools import binary_go_version, check_go, parse_go_version

EXAMPLE_PREFIX = "example:"
COMPILER_LINES = 8
LEAK_EXPERIMENT = "goroutineleakprofile"


def examples_dir() -> Path:
    return Path(str(resources.files("goleak_magic") / "examples"))


def example_names(test: bool = False) -> list[str]:
    """Shipped example programs; with ``test``, the shipped test packages."""
    return sorted(
        p.name
        for p in examples_dir().iterdir()
        if p.is_dir() and (any(p.glob("*_test.go")) if test else (p / "main.go").is_file())
    )


@dataclass
class Built:
    """What to exec, and how it came to be."""

    binary: Path
    kind: str  # "package", "file", "test", "example", "binary"
    spec: str
    go_version: str | None = None
    agent: bool = False  # the pprof agent was compiled in (see goleak_magic.agent)


def resolve(spec: str, *, test: bool = False) -> tuple[str, Path, list[str]]:
    """(kind, directory to build in, package args) for a TARGET spec, or the binary path."""
    if spec.startswith(EXAMPLE_PREFIX):
        name = spec[len(EXAMPLE_PREFIX) :]
        names = example_names(test)
        if name not in names:
            what = "test example" if test else "example"
            raise GoleakError(
                f"there is no shipped {what} '{name}'; pick one of: {', '.join(names)}."
            )
        if test:
            return "test", examples_dir() / name, ["."]
        if (examples_dir() / name / "go.mod").is_file():  # an example with its own deps
            return "example", examples_dir() / name, ["."]
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
    agent: bool = False,
    name: str | None = None,
) -> Built:
    """Build ``spec`` into ``out_dir`` (or check an existing binary).

    ``name`` is the binary's file name (default: a new one per build); the go command
    does not link again a binary that is up to date, so a stable name makes a rebuild of
    unchanged sources nearly free.

    With ``agent`` the pprof agent is added to the package through ``-overlay`` (the
    source tree is not written to), and a Go 1.26 build gets
    ``GOEXPERIMENT=goroutineleakprofile`` so the leak profile exists.
    """
    kind, where, pkg = resolve(spec, test=test)
    if kind == "binary":
        version = binary_go_version(where, go)
        if version is None:
            raise GoleakError(
                f"{spec} is not a Go binary ('go version' cannot read its build info); "
                "goleak_magic works on Go programs only."
            )
        return Built(where, kind, spec, version)
    build_env = {**os.environ, **(env or {})}
    # the toolchain that builds (an --env GOTOOLCHAIN included) is the one checked
    go_ver = check_go(go, build_env.get("GOTOOLCHAIN", ""))
    if name is None:
        stem = Path(pkg[0]).stem if kind in ("file", "example") else where.name
        name = f"{stem or 'main'}-{len(list(out_dir.iterdir()))}"
    binary = out_dir / name
    cmd = [go, "test", "-c"] if kind == "test" else [go, "build"]
    cmd += ["-o", str(binary)]
    if agent:
        overlay, pkg = _add_agent(go, go_ver, kind, where, pkg, out_dir, build_env)
        cmd.append(f"-overlay={overlay}")
    cmd += pkg
    proc = subprocess.run(cmd, cwd=where, capture_output=True, text=True, env=build_env)
    if proc.returncode == 0 and kind == "test" and not binary.exists():
        raise _no_tests(spec)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("#")]
        more = len(lines) - COMPILER_LINES
        head = "; ".join(lines[:COMPILER_LINES]) or f"exit status {proc.returncode}"
        raise GoleakError(
            f"go build of {spec} failed: {head}"
            + (f" (+{more} more lines)" if more > 0 else "")
            + " — fix it and run %golaunch again."
        )
    return Built(binary, kind, spec, go_ver, agent=agent)


def _add_agent(
    go: str,
    go_ver: str,
    kind: str,
    where: Path,
    pkg: list[str],
    out_dir: Path,
    build_env: dict[str, str],
) -> tuple[Path, list[str]]:
    """The overlay and package args that compile the agent in (and, for tests, the
    TestMain that writes the final snapshot: see goleak_magic.agent.testmain)."""
    pkg_dir = (where / pkg[0]).resolve() if kind == "example" else where
    tests = None
    if kind == "test":
        tests = testmain.package_info(go, where, build_env)
        if not tests.test_files and not tests.xtest_files:
            raise _no_tests(str(where))
    package = tests.name if tests is not None else "main"
    version = parse_go_version(go_ver)
    spec, names = agent_mod.overlay(pkg_dir, out_dir, package, version and version[0], tests)
    if kind == "file":  # a file-list build compiles only the files it names
        pkg = [*pkg, *names]
    if version is not None and version[0] == 26:  # built in from Go 1.27
        experiments = [e for e in build_env.get("GOEXPERIMENT", "").split(",") if e]
        if LEAK_EXPERIMENT not in experiments:
            build_env["GOEXPERIMENT"] = ",".join([*experiments, LEAK_EXPERIMENT])
    return spec, pkg


def _no_tests(spec: str) -> GoleakError:
    return GoleakError(f"{spec} has no tests (no _test.go files); give a package that has some.")
