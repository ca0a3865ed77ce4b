"""Goroutine snapshots of N live goroutines: the agent against Delve's own listing.

One run, on the shipped ``spawn`` example parking N goroutines (half of them provably
leaked), measures:

  agent   ``session().snapshot(name, source="agent")`` end to end: the GC's leak
          detection, the dump, the transfer, the parse, the DataFrame
  delve   Delve's listing of the same goroutines: halt, ``ListGoroutines`` paged, resume
          (``source="delve"``, Delve attached before each of its rounds and detached
          after; the attach time is shown apart), into the same DataFrame
  parse   ``dumps.text.parse_dump`` on the agent's N-goroutine dump, against the anchor
          of a plain Python loop over the same text's lines that only picks out each
          goroutine's id, header and creator (best of 7 each)
  worst   the same on a leakyservice dump where every goroutine has its own parent and
          arguments (``--leaky K`` goroutines, or what 60 s give)
  big     (``--big M``) one agent snapshot of M goroutines: time, progress calls, and how
          much this process's peak RSS grew (the dump itself is never held whole)

After one uncounted agent snapshot (the program's first GC over fresh stacks), rounds
interleave agent and delve so load on the machine hits both alike; medians are reported,
with the time the target was paused (the agent's stop-the-world for the dump; Delve's
halt-to-resume).

    python bench/bench_snapshot.py [--n 100000] [--rounds 3] [--big 1000000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable

import pandas as pd

from goleak_magic.agent import AgentClient
from goleak_magic.delve import server as dlv
from goleak_magic.dumps.text import parse_dump
from goleak_magic.session import Session
from goleak_magic.target import Target


def spawned(sess: Session, n: int, name: str) -> Target:
    t = sess.launch("example:spawn", name=name, args=["-n", str(n), "-drop-half"])
    deadline = time.monotonic() + 600
    while not any("created=" in ln for ln in t.log_lines(5, "stdout")):
        if time.monotonic() > deadline or not t.alive:
            sys.exit(f"spawn -n {n} did not start: {t.logs(5)}")
        time.sleep(0.1)
    return t


def leaky_count(t: Target) -> int:
    lines = [ln for ln in t.log_lines(5, "stdout") if ln.startswith("goroutines=")]
    return int(lines[-1].removeprefix("goroutines=")) if lines else 0


def naive_parse(text: str) -> int:
    """The anchor: a per-line Python loop keeping id, header and creator per goroutine."""
    rows = []
    cur: dict[str, str] = {}
    for line in text.split("\n"):
        if line.startswith("goroutine "):
            head, _, rest = line.partition(" [")
            cur = {"goid": head[10:], "header": rest}
            rows.append(cur)
        elif line.startswith("created by "):
            cur["creator"] = line[11:]
    return len(rows)


def best_of(fn: Callable[[], object], k: int = 7) -> float:
    """The fastest of ``k`` runs: CPU-bound work only ever gets slower from the
    neighbours on a shared machine, never faster."""
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--big", type=int, default=0, help="also snapshot this many (0: skip)")
    ap.add_argument("--leaky", type=int, default=20_000, help="goroutines in the worst case")
    a = ap.parse_args()
    sess = Session()
    sess.settings.max_rows = 4 * a.n
    try:
        t = spawned(sess, a.n, "bench")
        # Not counted: the first snapshot after the spawn also pays the program's first
        # GC over 100k fresh stacks, and this process's first-call costs.
        sess.snapshot(t.name, source="agent")
        runs: dict[str, list[tuple[float, float, int]]] = {"agent": [], "delve": []}
        attach: list[float] = []
        for _ in range(a.rounds):
            for source in ("agent", "delve"):
                held = None
                if source == "delve":
                    # Attached only for its own rounds: a ptrace-attached Go program takes
                    # every preemption signal through the debugger, which would slow the
                    # agent's GC and dump.
                    t0 = time.perf_counter()
                    held = dlv.for_target(t, workdir=sess.workdir, dlv=sess.settings.dlv)
                    attach.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                snap = sess.snapshot(t.name, source=source)
                took = time.perf_counter() - t0
                if held is not None:
                    held.release()
                assert snap.goroutines >= a.n, snap.summary()
                assert snap.leaked == a.n // 2, snap.summary()
                runs[source].append((took, snap.paused_s or 0.0, snap.goroutines))
        med = {s: [statistics.median(x[i] for x in r) for i in range(2)] for s, r in runs.items()}
        print(f"snapshot of {a.n:,} goroutines (spawn -drop-half), median of {a.rounds}:")
        for s, (took, paused) in med.items():
            print(f"  {s:6s} end to end {took:6.2f} s   target paused {paused:6.2f} s")
        print(f"  (Delve's attach, before each of its rounds: {statistics.median(attach):.2f} s)")
        ratio = med["delve"][0] / med["agent"][0]
        print(f"  delve / agent = {ratio:.1f}x end to end, "
              f"{med['delve'][1] / max(med['agent'][1], 1e-9):.1f}x paused")  # fmt: skip

        resp = AgentClient(t.agent_socket).open("/goleak/dump", 300)
        data = resp.read()
        text = data.decode()
        ours = best_of(lambda: parse_dump(data))
        anchor = best_of(lambda: naive_parse(text))
        count = len(parse_dump(data)[0]["goid"])
        print(f"parse of a {len(data) / 1e6:.1f} MB dump, {count:,} goroutines (best of 7):")
        print(f"  parse_dump {ours:.3f} s = {count / ours:,.0f} goroutines/s")
        print(f"  anchor (per-line Python loop, ids/headers/creators only) {anchor:.3f} s")
        print(f"  parse_dump / anchor = {ours / anchor:.2f}x the time")
        sess.stop(t.name)

        # The parser's worst case: every goroutine has its own parent and arguments, so
        # nearly every block is distinct before normalisation (one leak per request).
        leaky = sess.launch("example:leakyservice", name="leaky",
                            args=["-rate", "3000", "-slow", "1"])  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and leaky_count(leaky) < a.leaky:
            time.sleep(0.2)
        data = AgentClient(leaky.agent_socket).open("/goleak/dump", 300).read()
        sess.stop(leaky.name)
        cols, _ = parse_dump(data)
        parents = pd.Series(cols["parent_goid"]).nunique()
        ours = best_of(lambda: parse_dump(data))
        anchor = best_of(lambda: naive_parse(data.decode()))
        n = len(cols["goid"])
        print(f"parse of leakyservice's dump, {n:,} goroutines, {parents:,} distinct parents:")
        print(f"  parse_dump {ours:.3f} s = {n / ours:,.0f} goroutines/s; anchor {anchor:.3f} s; "
              f"parse_dump / anchor = {ours / anchor:.2f}x the time")  # fmt: skip

        if a.big:
            big = spawned(sess, a.big, "big")
            calls: list[int] = []
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t0 = time.perf_counter()
            snap = sess.snapshot(big.name, source="agent", progress=lambda n, b: calls.append(n))
            took = time.perf_counter() - t0
            grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
            print(f"snapshot of {a.big:,} goroutines: {snap.summary()}")
            print(f"  {took:.2f} s end to end; {len(calls)} progress calls; peak RSS of this "
                  f"process grew {grew / 1024:,.0f} MB ({grew * 1024 / snap.goroutines:,.0f} "
                  "bytes per goroutine)")  # fmt: skip
    finally:
        sess.close()


if __name__ == "__main__":
    main()
