"""Memory of a long streamed %gotrace, and of a trace of a million goroutines.

Both parts run through the Python API (``Session.gotrace`` / ``stop_gotrace``), with the
session's tables bounded to ``--max-rows`` rows each (``Settings.max_rows``); RSS is this
process's, from /proc/self/status.

  soak   ``example:leakyservice -rate R`` runs untraced for ``--anchor-s`` seconds (the
         anchor: the same session and program, no trace), then is traced for
         ``--soak-minutes``; RSS and the tables' rows (kept, dropped) are sampled every
         ``--every`` seconds. Bounded: once the tables sit at their bound, the last third
         of the samples does not grow (its growth and slope are printed).
  big    ``example:spawn -n N`` traced end to end: spawn's own creation time while traced
         + stop to rows landed, against spawn's untraced creation time and process wall
         time (the anchor, same run); peak RSS growth of this process (VmHWM, reset
         first), progress calls of the blocking wait, rows kept and dropped.

    python bench/bench_gotrace_soak.py [--soak-minutes 10] [--big 1000000]
        [--rate 1000] [--max-rows 100000]   (0 minutes / --big 0 skips a part)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from bench_fleet import reset_peak, rss_kib  # bench/ is the script's folder, on sys.path
from bench_gotrace import SITE, took, untraced
from bench_snapshot import leaky_count

from goleak_magic import build
from goleak_magic.session import Session
from goleak_magic.settings import Settings
from goleak_magic.target import Target
from goleak_magic.tools import find_go, go_version

MB = 1024  # /proc/self/status counts KiB


def sample(t: Target, seconds: float, every: float, label: str) -> list[float]:
    """RSS (MB) every ``every`` seconds for ``seconds``, each printed with the rows of
    the target's trace tables and the service's live goroutines."""
    out: list[float] = []
    t0 = time.monotonic()
    while True:
        rss = rss_kib("VmRSS") / MB
        out.append(rss)
        c, tr = t.tables["creations"], t.tables["transitions"]
        print(f"  {label} {time.monotonic() - t0:6.0f} s  RSS {rss:7.1f} MB  creations kept "
              f"{len(c):>9,} dropped {c.dropped:>10,}  transitions kept {len(tr):>9,} "
              f"dropped {tr.dropped:>10,}  service goroutines {leaky_count(t):,}",
              flush=True)  # fmt: skip
        if not t.alive:
            raise SystemExit(f"{t.name} exited: {t.logs(5)}")
        left = t0 + seconds - time.monotonic()
        if left <= 0:
            return out
        time.sleep(min(every, left))


def soak(sess: Session, a: argparse.Namespace) -> None:
    t = sess.launch("example:leakyservice", name="soak",
                    args=["-rate", str(a.rate), "-slow", str(a.slow)])  # fmt: skip
    print(f"soak: leakyservice -rate {a.rate} -slow {a.slow}, max_rows {a.max_rows:,}; "
          f"untraced for {a.anchor_s:.0f} s (anchor), then traced {a.soak_minutes:g} min",
          flush=True)  # fmt: skip
    anchor = sample(t, a.anchor_s, a.every, "untraced")
    reset_peak()
    handle = sess.gotrace(t.name)
    series = sample(t, a.soak_minutes * 60, a.every, "traced  ")
    peak = rss_kib("VmHWM") / MB
    t0 = time.perf_counter()
    sess.stop_gotrace(t.name)
    stop_s = time.perf_counter() - t0
    after = rss_kib("VmRSS") / MB
    c, tr = t.tables["creations"], t.tables["transitions"]
    s = handle.result.summary if handle.result is not None else {}
    print(f"soak result: {handle.summary()}")
    print(f"  RSS series (MB, every {a.every:g} s): {', '.join(f'{x:.0f}' for x in series)}")
    print(f"  anchor (same session, leakyservice untraced {a.anchor_s:.0f} s): RSS "
          f"{anchor[0]:.1f} -> {anchor[-1]:.1f} MB")  # fmt: skip
    print(f"  traced: first {series[0]:.1f} MB, last {series[-1]:.1f} MB, peak sampled "
          f"{max(series):.1f} MB, VmHWM while traced {peak:.1f} MB; last - anchor "
          f"{series[-1] - anchor[-1]:+.1f} MB")  # fmt: skip
    tail = series[-max(2, len(series) // 3) :]
    slope = np.polyfit(np.arange(len(tail)) * a.every / 60, tail, 1)[0]
    grew = tail[-1] - tail[0]
    print(f"  last third ({len(tail)} samples): {'grew' if grew > 0 else 'did not grow'} "
          f"{grew:+.1f} MB first to last, max - min {max(tail) - min(tail):.1f} MB, "
          f"slope {slope:+.2f} MB/min")  # fmt: skip
    print(f"  tables (max_rows {a.max_rows:,}): creations kept {len(c):,} dropped "
          f"{c.dropped:,}; transitions kept {len(tr):,} dropped {tr.dropped:,}")  # fmt: skip
    print(f"  converter: {s.get('events', 0):,} events (a stream's rows go only to the "
          "tables above: the converter keeps no copy)")  # fmt: skip
    print(f"  stop_gotrace {stop_s:.1f} s; RSS after stop {after:.1f} MB, VmHWM through the "
          f"stop {rss_kib('VmHWM') / MB:.1f} MB", flush=True)  # fmt: skip
    sess.forget(t.name)  # stops it; its tables go before the big part


def big(sess: Session, a: argparse.Namespace) -> None:
    binary = build.build("example:spawn", Path(tempfile.mkdtemp(prefix="bench-soak-")),
                         go=find_go(), agent=True).binary  # fmt: skip
    t0 = time.perf_counter()
    plain = untraced(binary, a.big)
    plain_wall = time.perf_counter() - t0
    t = sess.launch("example:spawn", name="big", args=["-n", str(a.big), "-delay", "2s"])
    reset_peak()
    base = rss_kib("VmRSS")
    handle = sess.gotrace(t.name)
    started = time.perf_counter()
    stopped: list[float] = []

    def stop_when_created() -> None:
        deadline = time.monotonic() + 1200
        while not any("created=" in ln for ln in t.log_lines(5, "stdout")):
            if time.monotonic() > deadline or not t.alive:
                handle.stop()
                return
            time.sleep(0.05)
        stopped.append(time.perf_counter())
        sess.stop_gotrace(t.name)

    stopper = threading.Thread(target=stop_when_created, daemon=True)
    stopper.start()
    calls: list[str] = []
    if not handle.wait(timeout=1800, progress=calls.append):
        raise SystemExit(f"the trace of spawn -n {a.big} did not end in 30 min")
    done = time.perf_counter()
    stopper.join()
    grew = (rss_kib("VmHWM") - base) / MB
    line = next((ln for ln in t.log_lines(50, "stdout") if "created=" in ln), None)
    if line is None or not stopped:
        raise SystemExit(f"spawn -n {a.big} did not report its creations: {t.logs(5)}")
    traced = took(line)
    after = done - stopped[0]
    c, tr = t.tables["creations"], t.tables["transitions"]
    kept = t.creations
    at_site = int(((kept["site"] == SITE) & (kept["source"] == "trace")).sum())
    s = handle.result.summary if handle.result is not None else {}
    print(f"big: spawn -n {a.big:,} traced end to end, max_rows {a.max_rows:,}: "
          f"{handle.summary()}")  # fmt: skip
    print(f"  traced: spawn creating {traced:.2f} s + stop to rows landed {after:.2f} s = "
          f"{traced + after:.2f} s; trace start to landed {done - started:.2f} s (incl. "
          f"spawn's 2 s -delay and its start)")  # fmt: skip
    print(f"  anchor (untraced, same run): spawn creating {plain:.2f} s, process wall "
          f"{plain_wall:.2f} s; traced / untraced: {(traced + after) / plain:.1f}x creation "
          f"time, {(traced + after) / plain_wall:.1f}x wall")  # fmt: skip
    print(f"  peak RSS of this process grew {grew:,.0f} MB; {len(calls)} progress calls")
    print(f"  tables: creations seen {c.appended:,} (kept {len(c):,}, {at_site:,} at spawn's "
          f"go statement; dropped {c.dropped:,}); transitions seen {tr.appended:,} (kept "
          f"{len(tr):,}, dropped {tr.dropped:,})")  # fmt: skip
    print(f"  converter: {s.get('events', 0):,} events", flush=True)
    sess.stop(t.name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--soak-minutes", type=float, default=10, help="0: skip the soak")
    ap.add_argument("--anchor-s", type=float, default=60, help="untraced stretch first")
    ap.add_argument("--every", type=float, default=10, help="seconds between samples")
    ap.add_argument("--rate", type=float, default=1000, help="leakyservice -rate")
    ap.add_argument("--slow", type=float, default=0.05, help="leakyservice -slow (leaks)")
    ap.add_argument("--big", type=int, default=1_000_000, help="spawn -n (0: skip)")
    ap.add_argument("--max-rows", type=int, default=100_000, help="Settings.max_rows")
    a = ap.parse_args()
    go = find_go()
    print(f"{go_version(go)}; load average {os.getloadavg()[0]:.1f}", flush=True)
    sess = Session(Settings(max_rows=a.max_rows))
    try:
        if a.soak_minutes > 0:
            soak(sess, a)
        if a.big > 0:
            big(sess, a)
    finally:
        sess.close()
    print(f"done; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
