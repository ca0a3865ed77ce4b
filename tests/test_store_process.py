"""Recordings across processes: loaded where go and dlv cannot run; saves killed by SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from goleak_magic import store
from goleak_magic.session import Session

from .conftest import wait_for

# Runs in a fresh interpreter: no subprocess may start (so no go, no dlv), PATH is empty.
RENDER = textwrap.dedent(
    """
    import json, sys

    def forbid(event, args):
        if event in ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.fork", "os.system"):
            raise RuntimeError(f"a recording must render without running anything: {event}")

    sys.addaudithook(forbid)
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()
    ip.run_line_magic("load_ext", "goleak_magic")
    t = ip.run_line_magic("goleak", "load " + sys.argv[1])
    sched = t.sched
    out = sys.argv[2]
    ip.run_line_magic("goleak", f"timeline {t.name} --html {out}/timeline.html")
    suspects = ip.run_line_magic("goleak", f"suspects {t.name}")
    ip.run_line_magic("goleak", f"report {t.name} --html {out}/report.html")
    print(json.dumps({
        "suspects": suspects.site.tolist(), "snapshots": int(t.goroutines.snapshot.nunique()),
        "state": t.state, "alive": t.alive, "rows": {k: len(v) for k, v in t.tables.items()},
        "goroutines_max": int(sched.goroutines.max()), "status": ip.run_line_magic(
            "goleak", "status").state.tolist(),
    }))
    """
)


def test_recording_renders_in_another_process_without_go_or_dlv(
    sess: Session, tmp_path: Path
) -> None:
    t = sess.launch("example:leakyservice", detail=True, args=["-rate", "100"])
    wait_for(lambda: len(t.tables["sched"]) >= 5, what="5 detail rows")
    for _ in range(2):
        sess.snapshot(t.name, source="agent")
    sess.stop(t.name)
    suspects = t.suspects
    assert len(suspects), "two snapshots of a leaking service rank its leak"
    path = sess.save(t.name, tmp_path / "incident.goleak")
    script = tmp_path / "render.py"
    script.write_text(RENDER)
    env = {k: v for k, v in os.environ.items() if k not in ("GOLEAK_DLV", "GOROOT", "GOPATH")}
    env["PATH"] = str(tmp_path / "empty")
    out = subprocess.run(
        [sys.executable, str(script), str(path), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["state"] == "recorded" and got["alive"] is False
    assert got["rows"]["sched"] == len(t.sched) and got["rows"]["waits"] == len(t.waits)
    assert got["goroutines_max"] == int(t.sched.goroutines.max())
    assert got["status"] == ["recorded"]
    assert got["suspects"] == suspects.site.tolist() and got["snapshots"] == 2
    page = (tmp_path / "timeline.html").read_text()
    assert "Bokeh" in page and t.name in page
    assert f"goroutines of {t.name} (pid {t.pid}, recorded while stopped, saved " in page
    report = (tmp_path / "report.html").read_text()
    assert suspects.site.iloc[0].split()[0] in report


# Builds a large recording named "new" and saves it over FILE, SIGKILLing itself at a chosen
# point of the save: the N-th write to the temp file (after half of it), before the fsync,
# before the rename, or right after it. "count" saves whole and prints how many writes it took.
SAVER = textwrap.dedent(
    """
    import os, random, signal, sys, time
    from goleak_magic import store
    from goleak_magic.settings import Settings
    from goleak_magic.target import Target

    rows, dest, point = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    t = Target("new", Settings())
    rnd, now = random.Random(1), time.time_ns()
    t.tables["goroutines"].extend(
        {"snapshot": 0, "time": now, "goid": i, "status": "waiting",
         "stack": tuple(f"main.f{j}(0x{rnd.getrandbits(64):x}) /m.go:{j}" for j in range(i % 12))}
        for i in range(rows)
    )
    writes = 0

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    class Killing:
        def __init__(self, f):
            self.f = f
        def __getattr__(self, name):
            return getattr(self.f, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.f.__exit__(*exc)
        def write(self, data):
            global writes
            writes += 1
            if point == f"write{writes}":
                self.f.write(bytes(data)[: len(data) // 2])
                self.f.flush()
                die()
            return self.f.write(data)

    def before(real, name):
        def call(*args, **kwargs):
            if point == name:
                die()
            out = real(*args, **kwargs)
            if point == "after-" + name:
                die()
            return out
        return call

    fdopen = os.fdopen
    os.fdopen = lambda *a, **k: Killing(fdopen(*a, **k))
    os.fsync = before(os.fsync, "fsync")
    os.replace = before(os.replace, "replace")
    store.save(t, dest)
    print(writes, flush=True)
    """
)
ROWS = 20_000


def _save(script: Path, dest: Path, point: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), str(ROWS), str(dest), point],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_save_killed_midway_leaves_old_file_or_none(sess: Session, tmp_path: Path) -> None:
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    whole = _save(script, tmp_path / "whole.goleak", "count")
    assert whole.returncode == 0, whole.stderr[-3000:]
    writes = int(whole.stdout)
    assert writes > 20 and (tmp_path / "whole.goleak").stat().st_size > 1_000_000

    t = sess.launch("example:spawn", name="old", args=["-n", "5"])
    wait_for(lambda: len(t.tables["sched"]) >= 2, what="2 schedtrace rows")
    old_bytes = sess.save("old", tmp_path / "old.goleak").read_bytes()

    spread = sorted({1, writes // 3, 2 * writes // 3, writes - 1, writes})
    points = [f"write{n}" for n in spread] + ["fsync", "replace", "after-replace"]
    cases = [(p, True) for p in points] + [(p, False) for p in points[::3]]
    for i, (point, with_old) in enumerate(cases):
        d = tmp_path / f"kill{i}"
        d.mkdir()
        dest = d / "rec.goleak"
        if with_old:
            dest.write_bytes(old_bytes)
        out = _save(script, dest, point)
        assert out.returncode == -signal.SIGKILL, f"{point}: {out.stderr[-2000:]}"
        if point == "after-replace":
            assert store.read(dest).frames["goroutines"].shape[0] == ROWS
        elif with_old:
            assert dest.read_bytes() == old_bytes, point
            store.read(dest)  # and it still loads
        else:
            assert not dest.exists(), point
        # Beside it, at most the killed save's hidden temp file.
        assert {p.name for p in d.iterdir() if p.name != "rec.goleak"} <= {
            p.name for p in d.glob(".rec.goleak.*.tmp")
        }, point
