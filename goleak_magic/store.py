"""Recordings: one file that holds everything recorded about a target, re-openable anywhere.

``%goleak save N FILE`` / ``Session.save`` write one; ``%goleak load FILE`` /
``Session.load`` bring it back as a :class:`~goleak_magic.record.Record` (no process;
state ``"recorded"``): every table and view (timeline, suspects, report) works on it with no
Go, no Delve and no live process on the machine.

Format (version 2; version 1 files still load)
----------------------------------------------
A zip archive (members stored, not deflated: parquet is compressed already)::

    manifest.json         what this is and where it came from (below)
    sched.parquet         one parquet file per table, the schemas of goleak_magic.tables
    waits.parquet
    creations.parquet     (its ``source`` column: older files, all Delve's, read as "delve")
    goroutines.parquet
    transitions.parquet   (%gotrace; older files have none and read as empty)
    metrics.parquet       (%gotrace --metrics; likewise)
    suspects.parquet
    log.parquet           the target's last stdout/stderr lines: time, stream, line
    instances.parquet     a fleet's only (goleak_magic.fleet): its instances and the
    instance_series.parquet   go_goroutines samples behind them

``manifest.json``::

    format    "goleak_magic-recording"       version   2 (this module reads <= VERSION)
    saved_at  ISO time                       goleak_magic   package version that wrote it
    target    name, state (at save time), pid, exit_status, attached, detail, kind, spec,
              argv (command line), env (extra environment given at launch), godebug,
              go_version, delve_version, binary, binary_sha256, started_at, ended_at,
              malformed_lines
    meta      snapshots, go_version, kind, spec and, when set, remote_pid, agent_socket,
              pprof_url, said_no_leak, wait_reasons (the Record fields of those names)
    tables    {kind: {file, rows, dropped, json_columns, schema}}; schema (version 2) is
              the goleak_magic.tables schema it conforms to when it is not the kind's
              own (a fleet's goroutines are ``fleet_goroutines``, its suspects
              ``fleet_suspects``)
    fleet     a fleet's only (version 2): prometheus (base URL), match, window_s,
              pprof_template, failures, notes. Never its headers: they are not saved.

Columns whose values are Python objects (``stack``, ``example_stack`` and
``runq_per_p`` tuples, ``labels`` dicts) are stored as JSON text and come back as the
same tuples and dicts; every other column keeps its pandas dtype through parquet. On load
each table is cast to the current schema, so a column added later reads as missing.

A save is atomic: the archive is written to a temporary file in the destination's
directory, flushed to disk (fsync) and renamed over the destination. A save that is
killed part way leaves the previous file (or none) at FILE, never a half-written one;
a killed save can leave a hidden ``.FILE.*.tmp`` beside it, which is safe to delete.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import io
import json
import math
import os
import re
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from . import analysis, tables
from .errors import GoleakError
from .fleet.record import Fleet
from .record import TABLE_KINDS, Record, Recorded
from .settings import Settings
from .tools import find_dlv

FORMAT = "goleak_magic-recording"
VERSION = 2
MANIFEST = "manifest.json"
KINDS = (*TABLE_KINDS, "suspects")
FLEET_KINDS = ("instances", "instance_series")
# Fleet fields kept in the manifest's "fleet" (the headers never are).
_FLEET_FIELDS = ("prometheus", "match", "window_s", "pprof_template", "failures", "notes")
LOG_COLUMNS = ["time", "stream", "line"]


# ---- object columns <-> JSON ----------------------------------------------------------
def _json_columns(kind: str) -> list[str]:
    return [c for c, dtype in tables.SCHEMAS[kind].items() if dtype == "object"]


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _encode(value: Any) -> str | None:
    if _is_missing(value):
        return None
    try:
        return json.dumps(value, default=_plain, ensure_ascii=False, separators=(",", ":"))
    except TypeError as e:
        raise GoleakError(
            f"a recorded value cannot be saved ({e}); report this as a goleak_magic bug."
        ) from None


def _plain(value: Any) -> Any:
    """JSON for the non-JSON values that object columns hold (numpy scalars, arrays)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _tuples(value: Any) -> Any:
    """JSON arrays back to the tuples the schemas use, all the way down."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _decode(text: Any) -> Any:
    return None if _is_missing(text) else _tuples(json.loads(text))


def _encode_column(s: pd.Series) -> np.ndarray:
    """JSON text (or None) per value; each distinct value is encoded once."""
    out = np.full(len(s), None, dtype=object)
    present = s.notna().to_numpy()
    values = s[present]
    try:
        codes, uniques = pd.factorize(values)
    except TypeError:  # unhashable values (labels dicts): one by one
        out[present] = [_encode(v) for v in values]
        return out
    out[present] = tables.objects([_encode(u) for u in uniques])[codes]
    return out


def _decode_column(s: pd.Series) -> np.ndarray:
    """The values back from their JSON text; each distinct text is decoded once."""
    codes, uniques = pd.factorize(s)  # missing -> code -1 -> the trailing None
    decoded = [_decode(u) for u in uniques]
    out = tables.objects([*decoded, None])[codes]
    if any(isinstance(v, dict) for v in decoded):  # mutable: each row gets its own copy
        out = tables.objects([dict(v) if isinstance(v, dict) else v for v in out])
    return out


# ---- save -----------------------------------------------------------------------------
def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _sha256(path: str | Path | None) -> str | None:
    if not path:
        return None
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None  # an attached process's binary may be gone or unreadable
    return h.hexdigest()


@functools.cache
def _dlv_version(dlv: str) -> str | None:
    try:
        out = subprocess.run([dlv, "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"Version:\s*(\S+)", out.stdout)
    return m.group(1) if m else None


def _delve_version(target: Record) -> str | None:
    """The Delve that recorded creations (the dlv we would use)."""
    if not (target.creations["source"] == "delve").any():
        return None  # none, or only the execution tracer's
    try:
        return _dlv_version(find_dlv(target.settings.dlv))
    except GoleakError:
        return None


# The manifest's "meta" keys: the Record fields of the same names (older files wrote them
# from a free-form dict, so any of them may be missing).
_META_FIELDS = ("snapshots", "go_version", "kind", "spec", "remote_pid", "agent_socket",
                "pprof_url", "said_no_leak", "wait_reasons")  # fmt: skip


def _meta(target: Record) -> dict[str, Any]:
    """The manifest's "meta": the fields a live target had set (none of its handles)."""
    values = {k: getattr(target, k) for k in _META_FIELDS}
    return {k: v for k, v in values.items() if v is not None and v is not False}


def _schemas(target: Record) -> dict[str, str]:
    """The tables schema of each table saved, by kind."""
    out = {kind: target.tables[kind].kind for kind in TABLE_KINDS}
    out["suspects"] = "fleet_suspects" if isinstance(target, Fleet) else "suspects"
    if isinstance(target, Fleet):
        out.update({kind: kind for kind in FLEET_KINDS})
    return out


def _fleet_meta(target: Record) -> dict[str, Any]:
    """A fleet's manifest entry (never its headers); nothing for a target."""
    if not isinstance(target, Fleet):
        return {}
    return {"fleet": {k: getattr(target, k) for k in _FLEET_FIELDS}}


def manifest(target: Record, frames: dict[str, pd.DataFrame], dropped: dict[str, int]) -> dict:
    binary = target.binary or (target.argv[0] if target.argv else None)
    # A loaded recording saved again keeps where it came from (its process is long gone).
    before = target.recorded
    return {
        "format": FORMAT,
        "version": VERSION,
        "saved_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "goleak_magic": importlib.metadata.version("goleak_magic"),
        "target": {
            "name": target.name,
            "state": before.state if before else target.state,
            "pid": before.pid if before else target.pid,
            "exit_status": target.exit_status,
            "attached": target.attached,
            "detail": target.detail,
            "kind": target.kind,
            "spec": target.spec,
            "argv": list(target.argv),
            "env": dict(target.env),
            "godebug": target.godebug,
            "go_version": target.go_version,
            "delve_version": (before and before.delve_version) or _delve_version(target),
            "binary": str(binary) if binary else None,
            "binary_sha256": (before and before.binary_sha256) or _sha256(binary),
            "started_at": _iso(target.started_at),
            "ended_at": _iso(target.ended_at),
            "malformed_lines": target.malformed_lines,
        },
        "meta": _meta(target),
        "tables": {
            kind: {
                "file": f"{kind}.parquet",
                "rows": len(df),
                "dropped": dropped.get(kind, 0),
                "json_columns": _json_columns(schema),
                "schema": schema,
            }
            for (kind, df), schema in zip(frames.items(), _schemas(target).values(), strict=True)
        },
        **_fleet_meta(target),
    }


def _log_frame(target: Record) -> pd.DataFrame:
    df = pd.DataFrame(target.log_records(), columns=LOG_COLUMNS)
    df["time"] = pd.to_datetime(df["time"], unit="s", utc=True)
    return df.astype({"stream": "string", "line": "string"})


def _parquet(df: pd.DataFrame, json_columns: list[str], out: IO[bytes]) -> None:
    df = df.copy()
    df.attrs = {}  # derived views (a fleet's per-instance suspects), not the table
    for col in json_columns:
        df[col] = _encode_column(df[col])  # str or None: stored as a parquet string column
    df.to_parquet(out, index=False)


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[IO[bytes]]:
    """A file that appears at ``path`` whole, or not at all."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp made it 0600
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # The rename itself must reach the disk too, or a crash could bring back the old file.
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _umask() -> int:
    """The process umask, read without setting it (os.umask would race other threads)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def save(target: Record, path: str | Path) -> Path:
    """Write everything recorded about ``target`` to ``path`` (atomically); return it."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise GoleakError(f"{path} is a directory; give a file name such as {path}/run.goleak.")
    if not path.parent.is_dir():
        raise GoleakError(f"the directory {path.parent} does not exist; create it or pick another.")
    frames = {kind: target.tables[kind].frame() for kind in TABLE_KINDS}
    frames["suspects"] = target.suspects
    if isinstance(target, Fleet):
        frames.update(instances=target.instances, instance_series=target.series)
    dropped = {kind: target.tables[kind].dropped for kind in TABLE_KINDS}
    man = manifest(target, frames, dropped)
    try:
        with _atomic(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr(MANIFEST, json.dumps(man, indent=1, default=str))
            for kind, df in frames.items():
                with zf.open(f"{kind}.parquet", "w", force_zip64=True) as out:
                    _parquet(df, man["tables"][kind]["json_columns"], out)
            with zf.open("log.parquet", "w", force_zip64=True) as out:
                _parquet(_log_frame(target), [], out)
    except OSError as e:
        raise GoleakError(
            f"could not write {path}: {e.strerror}; check the path and free space."
        ) from None
    return path


# ---- load -----------------------------------------------------------------------------
def _read_table(zf: zipfile.ZipFile, entry: dict[str, Any]) -> pd.DataFrame:
    df = pd.read_parquet(io.BytesIO(zf.read(entry["file"])))
    for col in entry.get("json_columns", []):
        if col in df:
            df[col] = _decode_column(df[col])
    return df


def _older(kind: str, df: pd.DataFrame) -> pd.DataFrame:
    """A table as an older goleak_magic saved it, read as today's."""
    if kind == "creations" and "source" not in df:
        df["source"] = "delve"  # saved before the execution tracer came: all Delve's
    if kind == "suspects" and "suspect" not in df and "score" in df:
        # saved before the suspect rule had parts: growth was the whole of it
        df["suspect"] = df["score"] >= analysis.SUSPECT_THRESHOLD
        df["why"] = df["suspect"].map({True: analysis.WHY["growth"], False: None})
    return df


@dataclass
class Recording:
    """A recording as read from its file."""

    path: Path
    manifest: dict[str, Any]
    frames: dict[str, pd.DataFrame]  # by kind, conformed to the current schemas
    log: pd.DataFrame  # time, stream, line


def read(path: str | Path) -> Recording:
    """Read and check the recording at ``path``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GoleakError(f"there is no recording at {path}; check the file name.")
    try:
        with zipfile.ZipFile(path) as zf:
            man = json.loads(zf.read(MANIFEST))
            if man.get("format") != FORMAT:
                raise GoleakError(f"{path} is not a goleak_magic recording; give one saved "
                                  "with %goleak save.")  # fmt: skip
            if not isinstance(man.get("version"), int) or man["version"] > VERSION:
                raise GoleakError(
                    f"{path} is a version {man.get('version')} recording and this goleak_magic "
                    f"reads up to version {VERSION}; upgrade goleak_magic to open it."
                )
            saved = man["tables"]
            frames = {
                kind: tables.conform(
                    saved[kind].get("schema", kind), _older(kind, _read_table(zf, saved[kind]))
                )
                if kind in saved
                else tables.empty(kind)
                for kind in (*KINDS, *(k for k in FLEET_KINDS if k in saved))
            }
            log = _read_table(zf, {"file": "log.parquet"})
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise GoleakError(
            f"{path} is not a readable goleak_magic recording ({type(e).__name__}: {e}); "
            "save it again with %goleak save."
        ) from None
    return Recording(path.resolve(), man, frames, log)


def _ts(text: str | None) -> pd.Timestamp | None:
    return None if text is None else pd.Timestamp(text)


def to_target(rec: Recording, name: str, settings: Settings) -> Record:
    """A Record named ``name`` holding the recording ``rec``.

    It has no process (``pid`` is None; the recorded pid is in ``recorded.pid``), so
    nothing can signal or debug it by mistake; its state is ``"recorded"``.
    """
    man, frames, log = rec.manifest, rec.frames, rec.log
    info = man["target"]
    meta = man.get("meta") or {}
    fleet = man.get("fleet")
    extra: dict[str, Any] = {}
    if fleet is not None:
        extra = {k: fleet[k] for k in _FLEET_FIELDS if k in fleet}
        extra.update(instances=frames["instances"], series=frames["instance_series"])
    target = (Fleet if fleet is not None else Record)(
        name,
        settings,
        exit_status=info.get("exit_status"),
        attached=bool(info.get("attached")),
        detail=bool(info.get("detail")),
        argv=list(info.get("argv") or []),
        env=dict(info.get("env") or {}),
        godebug=info.get("godebug") or "",
        started_at=_ts(info.get("started_at")),
        # A target saved while running ends where its recording ends.
        ended_at=_ts(info.get("ended_at")) or _ts(man.get("saved_at")),
        malformed_lines=int(info.get("malformed_lines") or 0),
        recorded=Recorded(
            path=str(rec.path),
            saved_at=man.get("saved_at"),
            state=info.get("state"),
            pid=info.get("pid"),
            delve_version=info.get("delve_version"),
            binary_sha256=info.get("binary_sha256"),
            goleak_magic=man.get("goleak_magic"),
            version=man["version"],
        ),
        snapshots=list(meta.get("snapshots") or []),
        go_version=meta.get("go_version"),
        kind=meta.get("kind"),
        spec=meta.get("spec"),
        remote_pid=meta.get("remote_pid"),
        agent_socket=meta.get("agent_socket"),
        pprof_url=meta.get("pprof_url"),
        said_no_leak=bool(meta.get("said_no_leak")),
        wait_reasons=meta.get("wait_reasons"),
        **extra,
    )
    for kind in TABLE_KINDS:
        rows, df = target.tables[kind], frames[kind]
        if kind == "goroutines":  # one chunk per snapshot, as live
            for _, chunk in df.groupby("snapshot", sort=True):
                rows.add(chunk.reset_index(drop=True))  # type: ignore[union-attr]
        elif isinstance(rows, tables.FrameLog):
            if len(df):
                rows.add(df)
        else:
            rows.extend(df.to_dict("records"))
        # Rows the live target had already let go of stay counted as dropped.
        rows.appended += int(man["tables"].get(kind, {}).get("dropped", 0))
    target.keep_suspects(frames["suspects"])
    target.restore_log(
        (t.timestamp(), str(s), str(ln))
        for t, s, ln in zip(log["time"], log["stream"], log["line"], strict=True)
    )
    return target
