"""``python -m goleak_magic demo``: the main job, end to end, from a terminal."""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from . import session
from .errors import GoleakError


def demo(seconds: float) -> int:
    s = session()
    t = s.launch("example:leakyservice", detail=True, args=["-rate", "100"])
    print(f"launched {t!r}; recording its scheduler for {seconds:g}s ...", flush=True)
    time.sleep(seconds)
    s.stop(t.name)
    sched = t.sched
    cols = ["time", "t_ms", "gomaxprocs", "threads", "runqueue", "goroutines", "g_waiting"]
    with pd.option_context("display.width", 160, "display.max_rows", 40):
        print(sched[cols].to_string(index=False))
    print(
        f"\n{len(sched)} schedtrace rows; live goroutines went from "
        f"{sched.goroutines.iloc[0]} to {sched.goroutines.iloc[-1]}: a leak climbs."
    )
    print("\ntop wait reasons at the last tick:")
    waits = t.waits
    print(waits[waits.t_ms == waits.t_ms.max()].head(5).to_string(index=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="goleak-magic")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="launch the leaky example and print its scheduler table")
    d.add_argument("--seconds", type=float, default=5.0)
    a = p.parse_args(argv)
    try:
        return demo(a.seconds)
    except GoleakError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        session().close()


if __name__ == "__main__":
    sys.exit(main())
