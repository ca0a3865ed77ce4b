"""Cost per recorded goroutine creation: the execution tracer (%gotrace) against %dlvtrace.

One run measures, on the shipped ``spawn`` example (built with the agent):

  gotrace     spawn -n N with the trace streamed through the agent: per creation, end to
              end = (spawn's own time for its N creations while traced + the time from
              stop() to the DataFrame) / N: capture, convert and load all counted
  dlvtrace    the anchor: goleak_magic's Delve tracer on spawn -n M (M smaller: one stop
              per creation), per creation = (last - first creation) / (M - 1)
  slowdown    spawn's own creation time traced / untraced (same N)
  convert     events per second of tracecv + loading into DataFrames, from the saved raw
              trace of the gotrace run (file to DataFrames), against tracecv alone
              writing to /dev/null (the parser's own speed on this machine, right now)
Both must see exactly their N (M) creations at spawn's go statement. Rounds interleave;
medians are compared.

    python bench/bench_gotrace.py [--n 100000] [--dlv-n 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_dlvtrace import delve_rows  # bench/ is the script's folder, on sys.path

from goleak_magic import build, exectrace, process
from goleak_magic.build import examples_dir
from goleak_magic.tools import find_go, find_tracecv, go_version

SPAWN_GO = examples_dir() / "spawn" / "main.go"
SPAWN_LINE = next(
    i + 1 for i, ln in enumerate(SPAWN_GO.read_text().splitlines()) if ln.strip() == "go park(ch)"
)
SITE = f"main.main {SPAWN_GO}:{SPAWN_LINE}"
UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def took(text: str) -> float:
    """Seconds from spawn's report ``created=N in 1.2ms ...``."""
    d = re.search(r"created=\d+ in (\S+)", text).group(1)  # type: ignore[union-attr]
    return sum(float(v) * UNITS[u] for v, u in re.findall(r"([\d.]+)(\D+)", d))


def untraced(binary: Path, n: int) -> float:
    out = subprocess.run([str(binary), "-n", str(n), "-hold", "1ms"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return took(out)


def with_agent(
    binary: Path, args: list[str], log: Path, ready: str = ""
) -> tuple[subprocess.Popen[bytes], Path]:
    """``binary args`` with its agent on a private socket, its output into ``log``;
    returns once the socket is there and ``log`` holds ``ready``."""
    sock = Path(tempfile.mkdtemp(prefix="bench-agent-")) / "agent.sock"
    with open(log, "wb") as f:
        prog = process.spawn([str(binary), *args], stdout=f, stderr=subprocess.STDOUT,
                             env={**os.environ, "GOLEAK_MAGIC_AGENT": str(sock)})  # fmt: skip
    deadline = time.monotonic() + 30
    while not (sock.exists() and ready in log.read_text()):
        if prog.poll() is not None or time.monotonic() > deadline:
            prog.kill()
            prog.wait()
            raise SystemExit(f"{binary.name} did not start: {log.read_text()[-500:]}")
        time.sleep(0.01)
    return prog, sock


def gotrace(binary: Path, n: int, workdir: Path) -> tuple[float, float, float, Path]:
    """(per creation end to end, spawn's traced creation time, stop-to-DataFrame, raw)."""
    log = workdir / "spawn.out"
    prog, sock = with_agent(binary, ["-n", str(n), "-delay", "2s"], log)
    try:
        raw = workdir / "spawn.trace"
        cap = exectrace.stream(sock, save=raw)
        while "created=" not in log.read_text():
            if prog.poll() is not None:
                raise SystemExit("spawn exited early")
            time.sleep(0.01)
        t0 = time.perf_counter()
        tables = cap.stop().result(timeout=600)
        after = time.perf_counter() - t0
    finally:
        prog.kill()
        prog.wait()
    seen = int((tables.creations["site"] == SITE).sum())
    if seen != n:
        raise SystemExit(f"gotrace saw {seen} creations at spawn's go statement, expected {n}")
    traced = took(log.read_text())
    return (traced + after) / n, traced, after, raw


def dlvtrace(binary: Path, n: int, workdir: Path) -> float:
    prog = process.spawn([str(binary), "-n", str(n), "-delay", "4s", "-hold", "1ms"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    rows = delve_rows(prog, workdir, "the Delve trace")
    times = [r["time"] for r in rows if r["site"] == SITE]
    if len(times) != n:
        raise SystemExit(f"dlvtrace saw {len(times)} creations, expected {n}")
    return (times[-1] - times[0]) / (n - 1) / 1e9


def convert_rate(raw: Path) -> tuple[float, float, int]:
    """(events/s into DataFrames, events/s of tracecv alone, events)."""
    t0 = time.perf_counter()
    subprocess.run([find_tracecv(), str(raw)], stdout=subprocess.DEVNULL, check=True)
    alone = time.perf_counter() - t0
    t0 = time.perf_counter()
    tables = exectrace.from_file(raw)
    events = tables.summary["events"]
    return events / (time.perf_counter() - t0), events / alone, events


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="creations traced by gotrace")
    ap.add_argument("--dlv-n", type=int, default=1000, help="creations traced by Delve")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench_gotrace-"))
    go = find_go()
    find_tracecv()  # built before anything is timed
    binary = build.build("example:spawn", workdir, go=go, agent=True).binary
    print(f"spawn -n {a.n} (Delve: -n {a.dlv_n}), {a.rounds} rounds; {go_version(go)}")
    rows = []
    for r in range(a.rounds):
        plain = untraced(binary, a.n)
        per, traced, after, raw = gotrace(binary, a.n, workdir)
        anchor = dlvtrace(binary, a.dlv_n, workdir)
        rate, alone, events = convert_rate(raw)
        rows.append((per, anchor, traced / plain, rate, alone))
        print(f"round {r + 1}: gotrace {per * 1e6:.2f} us/creation (creating {traced:.3f}s, "
              f"stop->DataFrame {after:.3f}s), dlvtrace {anchor * 1e3:.3f} ms/creation, "
              f"untraced {plain:.3f}s, convert+load {rate / 1e6:.2f}M events/s of {events} "
              f"(tracecv alone {alone / 1e6:.2f}M/s)",
              flush=True)  # fmt: skip
    med = [statistics.median(x[i] for x in rows) for i in range(5)]
    print(f"per creation: gotrace {med[0] * 1e6:.2f} us, dlvtrace {med[1] * 1e3:.3f} ms; "
          f"ratio {med[0] / med[1]:.4f} (target <= 0.01), counts exact")  # fmt: skip
    print(f"spawn traced / untraced: {med[2]:.2f}x (target <= 1.5)")
    print(f"convert + load: {med[3] / 1e6:.2f}M events/s (target >= 2M); tracecv alone "
          f"{med[4] / 1e6:.2f}M/s, ratio {med[3] / med[4]:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
