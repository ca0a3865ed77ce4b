"""Recordings (store.py): real runs saved and loaded, object columns, bad files, magics."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import goleak_magic
from goleak_magic import GoleakError, store
from goleak_magic.session import Session
from goleak_magic.settings import Settings
from goleak_magic.target import TABLE_KINDS, Target

from .conftest import wait_for


def _recorded_leakyservice(sess: Session) -> Target:
    t = sess.launch("example:leakyservice", detail=True, args=["-rate", "100"])
    wait_for(lambda: len(t.tables["sched"]) >= 5 and len(t.tables["waits"]), what="detail rows")
    wait_for(lambda: any("goroutines=" in ln for ln in t.log_lines()), what="a stdout line")
    sess.stop(t.name)
    return t


def test_real_run_round_trips(sess: Session, tmp_path: Path) -> None:
    t = _recorded_leakyservice(sess)
    path = sess.save(t.name, tmp_path / "run.goleak")

    other = Session()
    r = other.load(path)
    assert r.name == t.name and r.state == "recorded" and not r.alive and r.pid is None
    assert r.wait(0)  # nothing to wait for
    for kind in TABLE_KINDS:
        pd.testing.assert_frame_equal(getattr(r, kind), getattr(t, kind))
    pd.testing.assert_frame_equal(r.suspects, t.suspects)
    assert isinstance(r.sched.runq_per_p.iloc[0], tuple)
    assert r.log_lines() == t.log_lines()
    assert r.exit_status == t.exit_status and r.started_at == t.started_at
    assert r.ended_at == t.ended_at and r.godebug == t.godebug and r.argv == t.argv

    man = r.recorded
    assert man is not None and man.state == "stopped" and man.pid == t.pid
    assert man.binary_sha256 == hashlib.sha256(t.binary.read_bytes()).hexdigest()
    assert r.go_version == t.go_version
    assert (r.kind, r.spec, r.agent_socket) == (t.kind, t.spec, t.agent_socket)  # manifest "meta"
    assert "scheddetail=1" in r.godebug
    r.stop()  # a recording has nothing to stop; this must not raise or signal anything
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # an ordinary file, not mkstemp's 0600

    # Saved again from the loaded copy (no binary, no process): still says where it came from.
    again = store.read(other.save(r.name, tmp_path / "again.goleak")).manifest["target"]
    first = store.read(path).manifest["target"]
    for key in ("pid", "state", "binary_sha256", "go_version", "godebug", "argv", "started_at"):
        assert again[key] == first[key], key
    other.close()


def test_live_target_saves_what_it_has(sess: Session, tmp_path: Path) -> None:
    t = sess.launch("example:spawn", args=["-n", "20"])
    wait_for(lambda: len(t.tables["sched"]) >= 3, what="3 schedtrace rows")
    path = sess.save(t.name, tmp_path / "live.goleak")
    r = sess.load(path)
    assert r.name == "spawn-2" and t.alive and not r.alive
    assert r.recorded is not None and r.recorded.state == "running"
    assert 3 <= len(r.sched) <= len(t.sched)
    assert r.ended_at is not None  # a live save ends where its recording ends


def _object_rows() -> tuple[list[dict], list[dict], list[dict]]:
    now = pd.Timestamp.now(tz="UTC")
    stack = ("main.handler.func1() /src/main.go:42", "net/http.(*conn).serve() /x.go:1")
    goroutines = [
        {"snapshot": 1, "time": now, "goid": 7, "status": "waiting", "labels": {"req": "a"},
         "stack": stack, "leaked": True},
        {"snapshot": 1, "time": now, "goid": 8, "status": "runnable", "labels": {},
         "stack": ()},
        {"snapshot": 2, "time": now, "goid": 9, "status": "waiting", "labels": None,
         "stack": None, "top": "ünïcode ✓"},
    ]  # fmt: skip
    creations = [
        {"time": now, "seq": 1, "goid": 1, "new_goid": 7, "site": stack[0], "stack": stack,
         "stack_id": 0},
        {"time": now, "seq": 2, "goid": 1, "stack": (), "stack_id": 1, "runtime": True},
    ]  # fmt: skip
    suspects = [
        {"site": stack[0], "alive": 2, "growth_per_min": 1.5, "first_seen": now, "persisted": 2,
         "leaked_proven": 1,
         "example_stack": stack, "score": 0.9, "evidence": "grows"},
    ]  # fmt: skip
    return goroutines, creations, suspects


def test_object_columns_round_trip(tmp_path: Path) -> None:
    t = Target("objects", Settings())
    goroutines, creations, suspects = _object_rows()
    t.tables["goroutines"].extend(goroutines)
    t.tables["creations"].extend(creations)
    t.tables["sched"].append({"time": 0, "t_ms": 0, "runq_per_p": (3, 0, 1)})
    t.tables["waits"] = store.tables.RowLog("waits", maxlen=2)
    t.tables["waits"].extend({"time": i, "t_ms": i, "wait_reason": "sleep", "count": 1}
                             for i in range(5))  # fmt: skip
    t.keep_suspects(store.tables.frame("suspects", suspects))
    path = store.save(t, tmp_path / "objects.goleak")
    r = Session().load(path)
    for kind in (*TABLE_KINDS, "suspects"):
        pd.testing.assert_frame_equal(getattr(r, kind), getattr(t, kind))
    g = r.goroutines
    assert g["stack"].tolist() == [goroutines[0]["stack"], (), None]
    assert g.labels.tolist() == [{"req": "a"}, {}, None]
    assert r.sched.runq_per_p.iloc[0] == (3, 0, 1)
    assert r.tables["waits"].dropped == 3  # the oldest rows were let go before the save
    assert r.suspects.example_stack.iloc[0] == suspects[0]["example_stack"]


def test_a_recording_from_before_the_execution_tracer_loads(tmp_path: Path) -> None:
    """Files written before %gotrace: no transitions or metrics table, no creation source."""
    t = Target("older", Settings())
    t.tables["creations"].extend(_object_rows()[1])
    path = store.save(t, tmp_path / "new.goleak")
    old = tmp_path / "old.goleak"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(old, "w") as zout:
        man = json.loads(zin.read(store.MANIFEST))
        for kind in ("transitions", "metrics"):
            del man["tables"][kind]
        zout.writestr(store.MANIFEST, json.dumps(man))
        for name in zin.namelist():
            if name == "creations.parquet":
                df = pd.read_parquet(zin.open(name)).drop(columns="source")
                zout.writestr(name, df.to_parquet(index=False))
            elif name not in (store.MANIFEST, "transitions.parquet", "metrics.parquet"):
                zout.writestr(name, zin.read(name))
    r = Session().load(old)
    assert r.creations["source"].tolist() == ["delve"] * len(r.creations) and len(r.creations)
    assert r.transitions.empty and list(r.transitions) == list(store.tables.SCHEMAS["transitions"])
    assert r.metrics.empty


def test_save_replaces_and_leaves_no_temp_files(sess: Session, tmp_path: Path) -> None:
    t = _recorded_leakyservice(sess)
    path = tmp_path / "run.goleak"
    path.write_text("an older file")
    sess.save(t.name, path)
    sess.save(t.name, path)  # and over a recording
    assert [p.name for p in tmp_path.iterdir()] == ["run.goleak"]
    assert store.read(path).manifest["target"]["name"] == t.name


def _rewrite(src: Path, dst: Path, edit_manifest: dict | None = None, drop: str = "") -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == drop:
                continue
            if item.filename == store.MANIFEST and edit_manifest:
                data = json.dumps({**json.loads(data), **edit_manifest}).encode()
            zout.writestr(item, data)


def test_version_1_recordings_still_load(sess: Session, tmp_path: Path) -> None:
    """Version 2 added a per-table schema (and a fleet's tables); a version 1 file has
    neither and reads as it always did."""
    t = _recorded_leakyservice(sess)
    new = sess.save(t.name, tmp_path / "v2.goleak")
    with zipfile.ZipFile(new) as zf:
        man = json.loads(zf.read(store.MANIFEST))
    v1 = {k: {f: v for f, v in e.items() if f != "schema"} for k, e in man["tables"].items()}
    _rewrite(new, tmp_path / "v1.goleak", {"version": 1, "tables": v1})
    old, now = sess.load(tmp_path / "v1.goleak", name="v1"), sess.load(new, name="v2")
    assert old.recorded.version == 1 and now.recorded.version == store.VERSION == 2
    for kind in ("sched", "creations", "goroutines", "suspects"):
        pd.testing.assert_frame_equal(getattr(old, kind), getattr(now, kind))


def test_bad_recordings_fail_with_one_sentence(sess: Session, tmp_path: Path) -> None:
    t = _recorded_leakyservice(sess)
    good = sess.save(t.name, tmp_path / "good.goleak")
    data = good.read_bytes()
    (tmp_path / "cut.goleak").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.goleak").write_text("not a zip")
    _rewrite(good, tmp_path / "future.goleak", {"version": store.VERSION + 1})
    _rewrite(good, tmp_path / "other.goleak", {"format": "something-else"})
    _rewrite(good, tmp_path / "nosched.goleak", drop="sched.parquet")
    expect = {
        "cut": "not a readable goleak_magic recording",
        "text": "not a readable goleak_magic recording",
        "future": "upgrade goleak_magic",
        "other": "is not a goleak_magic recording",
        "nosched": "not a readable goleak_magic recording",
        "missing": "there is no recording",
    }
    before = set(sess.targets)
    for stem, words in expect.items():
        with pytest.raises(GoleakError, match=words):
            sess.load(tmp_path / f"{stem}.goleak")
    assert set(sess.targets) == before  # a failed load takes no name
    with pytest.raises(GoleakError, match="is a directory"):
        sess.save(t.name, tmp_path)
    with pytest.raises(GoleakError, match="does not exist"):
        sess.save(t.name, tmp_path / "no" / "such.goleak")
    with pytest.raises(GoleakError, match="no target named"):
        sess.save("nope", tmp_path / "x.goleak")


def test_magics_save_and_load(ip: InteractiveShell, tmp_path: Path) -> None:
    t = ip.run_line_magic("golaunch", "example:spawn --name sp -- -n 10")
    wait_for(lambda: len(t.tables["sched"]) >= 2, what="2 schedtrace rows")
    path = tmp_path / "with space.goleak"
    ip.run_line_magic("goleak", f"save sp '{path}'")
    r = ip.run_line_magic("goleak", f"load '{path}' --name sp_rec")
    assert r is goleak_magic.session().targets["sp_rec"]
    assert r.state == "recorded" and len(r.sched) >= 2
    with pytest.raises(UsageError, match="required"):
        ip.run_line_magic("goleak", "save sp")
    with pytest.raises(UsageError, match="already exists"):
        ip.run_line_magic("goleak", f"load '{path}' --name sp_rec")
    with pytest.raises(UsageError, match="balance the quotes"):
        ip.run_line_magic("goleak", "load 'unbalanced")
