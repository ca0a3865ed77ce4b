"""A flight recorder left running on leakyservice under load: requests served with it,
against the same service without it (the anchor), rounds interleaved in one run.

Each round starts a fresh ``leakyservice`` (built with the agent; its own client at one
request a second, so the load is ours) and loads it with ``bench/loadgen`` (``--clients``
closed-loop clients on 127.0.0.1, a 1 s warm-up, then ``--seconds`` counted; which of
the two goes first alternates by round). Served counts every answer; the share of 2xx
is printed beside it, since a slowed handler answers 504 where it would have answered
200 (``-timeout``), and the ratio is given for both. A flight
round starts the recorder through the agent before the load (``--window`` seconds kept,
as ``%gotrace --flight``) and freezes it once after: the window must hold creations at
the handler's ``go`` statement, or the recorder was not recording. The service leaks
(``-slow``), so its goroutines climb during every round alike.
Target: flight / plain requests served >= 0.95 (at most 5% fewer), medians of the rounds.

    python bench/bench_flight.py [--rounds 5] [--seconds 10] [--clients 32]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_gotrace import with_agent  # bench/ is the script's folder, on sys.path

from goleak_magic import build, exectrace
from goleak_magic.build import examples_dir
from goleak_magic.tools import find_go, find_tracecv, go_version

SERVICE_GO = examples_dir() / "leakyservice" / "main.go"
HANDLER_LINE = next(
    i + 1
    for i, ln in enumerate(SERVICE_GO.read_text().splitlines())
    if ln.startswith("\tgo func() {")  # the handler's go statement (one tab: not main's)
)
SITE = f"main.handler {SERVICE_GO}:{HANDLER_LINE}"
LOADGEN = Path(__file__).resolve().parent / "loadgen" / "main.go"


def one_round(
    service: Path, loadgen: Path, a: argparse.Namespace, flight: bool, workdir: Path
) -> tuple[int, int, str]:
    """(requests served, 2xx among them, what the recorder's window held)."""
    log = workdir / "service.out"
    args = ["-rate", "1", "-timeout", a.timeout, "-slow", str(a.slow)]
    prog, sock = with_agent(service, args, log, ready="listening on")
    try:
        addr = re.search(r"listening on (\S+)", log.read_text()).group(1)  # type: ignore[union-attr]
        if flight:
            exectrace.flight_start(sock, min_age=a.window)
        out = subprocess.run(
            [str(loadgen), "-url", f"http://{addr}/query", "-c", str(a.clients),
             "-d", f"{a.seconds}s", "-warm", "1s"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        held = ""
        if flight:
            window = exectrace.flight_freeze(sock).creations
            at = int((window["site"] == SITE).sum())
            if at == 0:
                raise SystemExit(f"the flight recorder's window held no creation at {SITE}")
            held = f"window held {len(window):,} creations, {at:,} at the handler"
        if prog.poll() is not None:
            raise SystemExit(f"leakyservice exited during the load: {log.read_text()[-500:]}")
    finally:
        prog.kill()
        prog.wait()
    m = re.search(r"served=(\d+) ok=(\d+) errors=(\d+)", out)
    if m is None or int(m.group(3)):
        raise SystemExit(f"loadgen: {out.strip()}")
    return int(m.group(1)), int(m.group(2)), held


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds of each, interleaved")
    ap.add_argument("--seconds", type=float, default=10, help="counted load per round")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--window", type=float, default=10, help="seconds the recorder keeps")
    ap.add_argument("--timeout", default="2ms", help="leakyservice -timeout")
    ap.add_argument("--slow", type=float, default=0.05, help="leakyservice -slow (leaks)")
    a = ap.parse_args()
    go = find_go()
    find_tracecv()
    workdir = Path(tempfile.mkdtemp(prefix="bench_flight-"))
    service = build.build("example:leakyservice", workdir, go=go, agent=True).binary
    loadgen = workdir / "loadgen"
    subprocess.run([go, "build", "-o", str(loadgen), str(LOADGEN)], check=True,
                   cwd=LOADGEN.parent)  # fmt: skip
    print(f"leakyservice -timeout {a.timeout} -slow {a.slow}, {a.clients} clients, "
          f"{a.seconds:g} s counted, {a.rounds} rounds each; {go_version(go)}; load average "
          f"{os.getloadavg()[0]:.1f}",
          flush=True)  # fmt: skip
    got: dict[bool, list[tuple[int, int]]] = {False: [], True: []}
    for r in range(a.rounds):
        for on in (False, True) if r % 2 == 0 else (True, False):
            served, ok, held = one_round(service, loadgen, a, on, workdir)
            got[on].append((served, ok))
            what = f"; {held}" if held else ""
            rate = f"{served / a.seconds:,.0f}/s, {ok / served:.1%} 2xx"
            print(f"round {r + 1} {'flight' if on else 'plain '}: {served:,} served ({rate})"
                  f"{what}", flush=True)  # fmt: skip
    med = {on: [statistics.median(x[i] for x in got[on]) for i in (0, 1)] for on in got}
    paired = [f[0] / p[0] for f, p in zip(got[True], got[False], strict=True)]
    print(f"paired (same round) served ratios: {', '.join(f'{x:.3f}' for x in paired)}; "
          f"median {statistics.median(paired):.3f}, worst {min(paired):.3f}")  # fmt: skip
    load = f"load average {os.getloadavg()[0]:.1f}"
    print(f"median served: plain {med[False][0]:,.0f}, flight recorder {med[True][0]:,.0f}; "
          f"ratio {med[True][0] / med[False][0]:.3f} (target >= 0.95, i.e. at most 5% "
          f"fewer); 2xx only: ratio {med[True][1] / med[False][1]:.3f}; {load}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
