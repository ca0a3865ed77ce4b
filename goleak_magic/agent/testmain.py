"""The injected ``TestMain`` (``goleak_magic_testmain.go``): its overlay, and its output.

A ``--test`` build adds a TestMain to the package's tests with ``go test -overlay``; when
``FINAL_ENV`` names a file, it writes the final snapshot there after ``m.Run()`` (see the
Go file for the settling bound and the file's form). ``read_final`` reads it back.

A package with its own TestMain (in its internal or its external ``_test`` package) is
wrapped in an overlaid copy of the file that declares it; the rules:

- ``func TestMain(m *testing.M)`` is renamed ``goleakMagicUserTestMain``, and ours, added
  in the same package, calls it;
- in that file, every ``os.Exit(`` (through the name the file imports ``"os"`` as) calls
  ours instead, which writes the snapshot and then exits with the same code; a TestMain
  that returns gets its snapshot when it returns;
- the copy keeps every line where it was (positions in stacks stay right); a line added
  at its end keeps ``"os"`` in use and hands the renamed function to ours.

Not wrapped: a TestMain that ends the process another way (``log.Fatal``, ``os.Exit`` in
another file or through a dot-import of ``os``, a panic) writes no final snapshot; the
caller then has only the process's exit status and whatever dump it printed.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import GoleakError

FINAL_ENV = "GOLEAK_MAGIC_FINAL"
PARENT_ENV = "GOLEAK_MAGIC_PARENT"  # our pid: the test binary dies with us (Linux)
# The file name the build sees. Unlike the agent's, its goroutine (the test binary's main
# goroutine, which runs every test) is not left out of dumps by the parser: the tests'
# goroutines descend from it. goleak_magic.testrun counts it as testing's own.
FILE_STEM = "zz_goleak_magic_testmain"
SOURCE_NAME = "goleak_magic_testmain.go"
LINUX_SOURCE_NAME = "goleak_magic_testmain_linux.go"
WRAPPED = "goleakMagicUserTestMain"
EXIT = "goleakMagicTestExit"

_TESTMAIN_RE = re.compile(r"^func\s+TestMain(\s*\(\s*\w+\s+\*(?:\w+\.)?M\s*\))", re.M)
_PACKAGE_RE = re.compile(r"^package\s+(\w+)", re.M)
# An import spec of "os": `import "os"`, `import x "os"`, or a line of an import block.
_OS_IMPORT_RE = re.compile(r'^(?:import\s+)?\s*([\w.]+\s+)?"os"\s*(?://.*)?$', re.M)


@dataclass(frozen=True)
class TestPackage:
    """What ``go list`` says about a directory's tests."""

    name: str  # the package under test
    test_files: tuple[str, ...]  # *_test.go of the package itself
    xtest_files: tuple[str, ...]  # *_test.go of the external <name>_test package


def package_info(go: str, where: Path, env: dict[str, str]) -> TestPackage:
    proc = subprocess.run(
        [go, "list", "-json=Name,TestGoFiles,XTestGoFiles", "."],
        cwd=where,
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        first = (proc.stderr.strip().splitlines() or ["no output"])[0]
        raise GoleakError(f"go list in {where} failed: {first} — fix the package and retry.")
    info = json.loads(proc.stdout)
    return TestPackage(
        info["Name"], tuple(info.get("TestGoFiles") or ()), tuple(info.get("XTestGoFiles") or ())
    )


def source(package: str, name: str = SOURCE_NAME) -> str:
    """Our TestMain's Go source (or its Linux part), for a package named ``package``."""
    text = (resources.files(__package__) / name).read_text()
    return text.replace("\npackage main\n", f"\npackage {package}\n", 1)


def wrap(text: str) -> str | None:
    """The copy of a file that declares TestMain (rules above); None if it has none."""
    if _TESTMAIN_RE.search(text) is None:
        return None
    out = _TESTMAIN_RE.sub(rf"func {WRAPPED}\1", text, count=1)
    tail = [f"func init() {{ goleakMagicTestWrapped = {WRAPPED} }}"]
    m = _OS_IMPORT_RE.search(out)
    alias = (m.group(1) or "os").strip() if m else None
    if alias not in (None, ".", "_"):
        out, n = re.subn(rf"\b{re.escape(alias)}\.Exit\(", f"{EXIT}(", out)
        if n:
            tail.insert(0, f"var _ = {alias}.Exit")
    return out.rstrip("\n") + "\n\n" + "\n".join(tail) + "\n"


def overlay_files(
    info: TestPackage, pkg_dir: Path, out_dir: Path, file_names: tuple[str, str]
) -> dict[str, str]:
    """Overlay ``Replace`` entries that give the package our TestMain as ``file_names``
    (its two files, names not taken in ``pkg_dir``), wrapping its own TestMain if any."""
    replace: dict[str, str] = {}
    package = info.name
    for name in (*info.test_files, *info.xtest_files):
        text = (pkg_dir / name).read_text()
        copy = wrap(text)
        if copy is None:
            continue
        m = _PACKAGE_RE.search(text)
        package = m.group(1) if m else package
        backing = out_dir / f"wrapped-{abs(hash(str(pkg_dir)))}-{name}"
        backing.write_text(copy)
        replace[str(pkg_dir / name)] = str(backing)
        break  # the go tool allows one TestMain per test binary
    for file_name, name in zip(file_names, (SOURCE_NAME, LINUX_SOURCE_NAME), strict=True):
        backing = out_dir / f"{package}-{name}"
        backing.write_text(source(package, name))
        replace[str(pkg_dir / file_name)] = str(backing)
    return replace


@dataclass(frozen=True)
class Final:
    """A final snapshot as the injected TestMain wrote it."""

    info: dict[str, Any]  # profile (goroutineleak|goroutine), reads, settled, settle_ns, time_ns
    dump: bytes  # the debug=2 text


def read_final(path: Path) -> Final | None:
    """The final snapshot at ``path``; None if none was written (the process ended some
    other way before TestMain's end)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    head, _, dump = data.partition(b"\n")
    return Final(json.loads(head), dump)
