"""What does a recording cost to save and load, against plain parquet of the same tables?

Records a real target: ``example:spawn -n N`` (N goroutines parked on one go statement)
with schedtrace, then K agent snapshots with full stacks (``--stacks``), so the
``goroutines`` table holds K x N rows of real stacks. Then, in this process:

- ``store.save`` (JSON for object columns, zip, fsync, rename) and ``store.read`` +
  ``store.to_target`` (decode, conform, a loaded Target);
- the anchor, on the same frames: ``DataFrame.to_parquet`` / ``read_parquet`` into and out
  of memory, object columns as ``str()`` — the least any parquet-based format must do.

Prints seconds, rows/s, file size and the ratios (ours / anchor).
Usage: python bench/bench_store.py [-n N] [--snapshots K]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import pandas as pd

import goleak_magic
from goleak_magic import store
from goleak_magic.target import TABLE_KINDS


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def anchor(frames: dict[str, pd.DataFrame]) -> tuple[float, float]:
    """Seconds to write and to read the same tables as plain parquet in memory."""
    plain = {}
    for kind, df in frames.items():
        df = df.copy()
        for col in store._json_columns(kind):
            df[col] = df[col].map(lambda v: None if v is None else str(v))
        plain[kind] = df
    bufs: dict[str, io.BytesIO] = {}

    def write() -> None:
        for kind, df in plain.items():
            bufs[kind] = io.BytesIO()
            df.to_parquet(bufs[kind], index=False)

    def read() -> None:
        for buf in bufs.values():
            buf.seek(0)
            pd.read_parquet(buf)

    return timed(write)[0], timed(read)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--snapshots", type=int, default=3)
    a = ap.parse_args()
    s = goleak_magic.session()
    t = s.launch("example:spawn", detail=True, args=["-n", str(a.n)])
    try:
        for _ in range(a.snapshots):
            s.snapshot(t.name, stacks=True)
    finally:
        s.stop(t.name)
    frames = {kind: t.tables[kind].frame() for kind in TABLE_KINDS}
    frames["suspects"] = t.suspects
    rows = sum(len(df) for df in frames.values())
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.goleak"
        save_s, _ = timed(lambda: store.save(t, path))
        load_s, _ = timed(lambda: store.to_target(store.read(path), "x", s.settings))
        size = path.stat().st_size
    write_s, read_s = anchor(frames)
    print(f"recording: {rows:,} rows ({len(frames['goroutines']):,} goroutine rows with stacks), "
          f"{size / 1e6:.1f} MB")  # fmt: skip
    print(f"save  {save_s:6.2f} s  {rows / save_s:10,.0f} rows/s   anchor to_parquet   "
          f"{write_s:6.2f} s   ratio {save_s / write_s:.2f}")  # fmt: skip
    print(f"load  {load_s:6.2f} s  {rows / load_s:10,.0f} rows/s   anchor read_parquet "
          f"{read_s:6.2f} s   ratio {load_s / read_s:.2f}")  # fmt: skip
    s.close()


if __name__ == "__main__":
    main()
