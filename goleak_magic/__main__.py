"""``python -m goleak_magic demo``: the main job, end to end, from a terminal.

Launches the shipped leaky service with a detailed scheduler trace, records every
goroutine creation with Delve, takes a series of goroutine snapshots, and prints the
scheduler table, the creation sites, the ranked suspects and the verdict; the timeline
goes to a standalone HTML file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from . import session
from .errors import GoleakError


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)), flush=True)


def demo(seconds: float, html: Path) -> int:
    s = session()
    t = s.launch("example:leakyservice", detail=True, args=["-rate", "100"])
    print(f"launched {t!r}", flush=True)
    trace = s.trace(t.name, duration=seconds)
    series = s.snapshot(t.name, every=max(seconds / 4, 0.5), count=4)
    trace.wait()
    series.wait()
    s.stop(t.name)

    section("scheduler (GODEBUG=schedtrace,scheddetail), one row per tick")
    cols = ["time", "t_ms", "threads", "runqueue", "goroutines", "g_runnable", "g_waiting"]
    with pd.option_context("display.width", 160, "display.max_rows", 60):
        print(t.sched[cols].to_string(index=False))
    g = t.sched.goroutines.dropna()
    print(f"live goroutines: {g.iloc[0]} -> {g.iloc[-1]} in {t.uptime:.0f}s")

    section("who creates goroutines (%dlvtrace: one row per go statement)")
    sites = s.creation_sites(t.name)
    with pd.option_context("display.width", 200, "display.max_colwidth", 90):
        cols = ["site", "count", "alive", "rate_per_s", "runtime"]
        print(sites[cols].head(5).to_string(index=False))

    section("leak suspects (%schedsnap series + %goleak suspects)")
    sus = t.suspects
    with pd.option_context("display.width", 200, "display.max_colwidth", 120):
        print(sus[["site", "alive", "growth_per_min", "score", "evidence"]].head(5).to_string())

    section("verdict (%goleak report)")
    print(s.report(t.name).text())
    s.timeline(t.name, html=html)
    print(f"\ninteractive timeline: {html.resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="goleak-magic")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="investigate the shipped leaky service end to end")
    d.add_argument("--seconds", type=float, default=6.0, help="how long to record")
    d.add_argument("--html", type=Path, default=Path("goleak-demo.html"), help="timeline file")
    a = p.parse_args(argv)
    try:
        return demo(a.seconds, a.html)
    except GoleakError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        session().close()


if __name__ == "__main__":
    sys.exit(main())
