"""The tracepoint loop behind ``%dlvtrace``: every goroutine creation, one stop each.

Where to stop: ``runtime.newproc`` runs the creation on the system stack in a closure,
``runtime.newproc.func1``, which calls ``newproc1`` (it builds the new g) and then
``runqput(pp, newg, true)``. A tracepoint on the statement of that ``runqput`` call sees
both halves of a creation in one stop: ``newg.goid`` (the new goroutine's id) as a
variable, and through Delve's stack switch the creator's stack above ``runtime.newproc``
(the ``go`` statement and its callers). Delve finds the same spot for its own
step-into-goroutine; we find it the same way, by disassembling ``newproc.func1`` for the
call, so no Go-version-specific line number is needed. ``dlv trace 'runtime\\.newproc$'``
stops twice (entry and return) and never learns the new id.

With ``func`` (a Go regexp) it traces those functions' entries with their arguments
instead, as ``dlv trace`` does, into a ``calls`` table.

Rows are built on the connection's reader thread from each stop's ``api.Hit`` views,
after the next ``continue`` has gone out (see ``server.DlvServer._on_stop``); frames and
whole stacks are interned, so a hot ``go`` statement costs a dict lookup.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import GoleakError
from ..frames import frame_text
from . import api, rpc
from .server import DlvServer

HOOK_FUNC = "runtime.newproc.func1"
HOOK_CALL = "runtime.runqput"
CREATOR = "runtime.newproc"
HOOK_FRAMES = 4  # newproc.func1, systemstack, systemstack_switch, newproc
MAX_FUNCS = 200  # more tracepoints than this and every call of the program stops
LIVE_BUDGET_S = 5.0  # the closing goroutine listing (for "alive") gives up after this
LIVE_PAGE = 2000
# Delve counts hits per goroutine in each breakpoint and sends the whole map with every
# stop: with a new creator goroutine per request it grows without end. Past this many
# entries the tracepoint is set again (while halted, so nothing is missed).
HITCOUNT_REFRESH = 256
ARGS_CONFIG = api.LoadConfig(max_variable_recurse=1, max_string_len=64, max_array_values=8,
                             max_struct_fields=3)  # fmt: skip
INTERNAL_RUNTIME = "internal/runtime/"  # runtime's own subpackages (Go 1.23+)

Row = dict[str, Any]
Site = tuple[str, str, int]  # (func, file, line) of a frame; func "?" when Delve has none
Interned = tuple[tuple[str, ...], int, tuple[Site, ...]]  # (stack, stack_id, frames)


def package_of(func: str) -> str:
    """``net/http.(*Server).Serve`` → ``net/http``; ``runtime.gcenable`` → ``runtime``."""
    slash = func.rfind("/")
    dot = func.find(".", slash + 1)
    return func[:dot] if dot > 0 else func


def is_runtime(func: str | None) -> bool:
    if not func:
        return True
    pkg = package_of(func)
    return pkg == "runtime" or pkg.startswith(INTERNAL_RUNTIME)


class Stacks:
    """Interned frames and stacks of one target (ids stay stable across its traces)."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, ...], int] = {}
        self._by_raw: dict[tuple[Any, ...], Interned] = {}
        self._lock = threading.Lock()

    def intern(self, hit: api.Hit, skip_hook: bool, depth: int) -> Interned:
        """(stack, stack_id, frames) of a hit's stacktrace; ``frames`` are (func, file,
        line), innermost first, after the hook's own frames when ``skip_hook``."""
        key = (skip_hook, depth, *hit.stack_key())
        known = self._by_raw.get(key)
        if known is not None:
            return known
        frames = tuple(_site(loc) for loc in hit.stack())
        if skip_hook:
            cut = next((i for i, fr in enumerate(frames) if fr[0] == CREATOR), None)
            if cut is not None:
                frames = frames[cut + 1 :]
        stack = tuple(sys.intern(_site_text(fr)) for fr in frames[:depth])
        with self._lock:
            stack_id = self.ids.setdefault(stack, len(self.ids))
            out = (stack, stack_id, frames)
            self._by_raw[key] = out
        return out

    def intern_texts(self, stacks: list[tuple[str, ...]]) -> list[int]:
        """The ids of stacks already in text form (the execution tracer's), in the same
        id space as the hits', so one id is one stack on the target whatever saw it."""
        with self._lock:
            return [self.ids.setdefault(st, len(self.ids)) for st in stacks]


class Trace:
    """One ``%dlvtrace`` run on one target: rows flow into ``sink`` as they come."""

    def __init__(
        self,
        server: DlvServer,
        sink: Callable[[list[Row]], None],
        *,
        stacks: Stacks,
        seq0: int = 0,
        depth: int = 8,
        func: str | None = None,
        duration: float | None = None,
        max_events: int | None = None,
        live: bool = True,
        on_done: Callable[[Trace], None] | None = None,
    ) -> None:
        if depth < 0:
            raise GoleakError("--stack takes a number of frames, 0 or more (e.g. 8).")
        if duration is not None and duration <= 0:
            raise GoleakError("--duration takes a positive number of seconds, e.g. 5.")
        if max_events is not None and max_events <= 0:
            raise GoleakError("--max-events takes a positive number of events, e.g. 1000.")
        self.server = server
        self.sink = sink
        self.stacks = stacks
        self.depth = depth
        self.func = func
        self.duration = duration
        self.max_events = max_events
        self.want_live = live
        self.seq0 = seq0
        self.events = 0
        self.state = "starting"  # running, then stopped / done / exited / lost
        self.reason = ""
        self.warnings: list[str] = list(server.warnings)
        self.functions: list[str] = []
        self.refreshed = 0  # times the tracepoints were set again (HITCOUNT_REFRESH)
        self.bp_ids: set[int] = set()
        self._specs: dict[int, dict[str, Any]] = {}
        self.hook = ""  # where the tracepoint sits, for the record
        # every goroutine alive when the tracepoint went in / came out -> its go statement
        # (Delve's goroutine list, independent of the tracepoint), None if unknown
        self.live_before: dict[int, str | None] | None = None
        self.live: dict[int, str | None] | None = None
        self.live_at_ns: int | None = None
        self.started_ns = time.time_ns()
        self.ended_ns: int | None = None
        self._t0 = time.monotonic()
        self._t1: float | None = None
        self._on_done = on_done
        self._finished = False
        self._max_reached = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._timer: threading.Timer | None = None

    # ---- start ------------------------------------------------------------------------
    def start(self) -> Trace:
        """Set the tracepoints (target halted) and let the target run."""
        try:
            self.bp_ids = set(self.server.run_halted(self._install))
        except rpc.DelveError as e:
            raise GoleakError(f"Delve refused the tracepoint on {self.server.label}: {e}.") from e
        self.state = "running"
        self._t0 = time.monotonic()
        self.started_ns = time.time_ns()
        self.server.add_handler(self)
        self.server.start()
        if self.duration is not None:
            self._timer = threading.Timer(self.duration, self._expire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _install(self, client: rpc.Client) -> list[int]:
        if self.func is not None:
            return self._install_func(client)
        ids = [self._install_creation_hook(client)]
        if self.want_live:  # in the same halt: nothing is created between the two
            self.live_before, _ = self._list_live(client)
        return ids

    def _install_creation_hook(self, client: rpc.Client) -> int:
        call = _runqput_call(client)
        delve_depth = max(self.depth, 1) + HOOK_FRAMES
        if call is None:
            # An unexpected runtime: stop on newproc's entry (no new goroutine id there).
            self.warnings.append(
                f"no {HOOK_CALL} call found in {HOOK_FUNC} of this Go runtime; tracing "
                f"{CREATOR} entries instead, so new_goid stays empty."
            )
            self.hook = CREATOR
            return self._create(
                client, function_name=CREATOR, tracepoint=True, stacktrace=max(self.depth, 1) + 1
            )
        self.hook = f"{HOOK_FUNC} {call.loc.file}:{call.loc.line}"
        try:
            return self._create(
                client,
                file=call.loc.file,
                line=call.loc.line,
                tracepoint=True,
                stacktrace=delve_depth,
                variables=["newg.goid"],
            )
        except rpc.RPCError as e:
            if "exists" in e.message.lower():
                raise GoleakError(
                    f"another Delve client already has a tracepoint on goroutine creation in "
                    f"{self.server.label}; stop that trace first."
                ) from None
            raise

    def _create(self, client: rpc.Client, **spec: Any) -> int:
        """Set one tracepoint, remembering how (to set it again: HITCOUNT_REFRESH)."""
        bp_id = client.create_breakpoint(**spec).id
        self._specs[bp_id] = spec
        return bp_id

    def _install_func(self, client: rpc.Client) -> list[int]:
        assert self.func is not None
        try:
            funcs = client.list_functions(self.func)
        except rpc.RPCError as e:
            raise GoleakError(
                f"--func '{self.func}' is not a valid Go regexp ({e.message}); fix it, "
                r"e.g. 'main\.handler$'."
            ) from None
        if not funcs:
            raise GoleakError(
                f"--func '{self.func}' matches no function in {self.server.label}; check the "
                r"spelling (package-qualified, e.g. 'main\.handler$' or 'net/http\.Get$')."
            )
        if len(funcs) > MAX_FUNCS:
            raise GoleakError(
                f"--func '{self.func}' matches {len(funcs)} functions (e.g. {funcs[0]}); "
                f"narrow it to at most {MAX_FUNCS}, e.g. anchor it with '$'."
            )
        ids, failed = [], []
        for fn in funcs:
            try:
                bp_id = self._create(
                    client,
                    function_name=fn,
                    tracepoint=True,
                    stacktrace=max(self.depth, 1),
                    load_args=ARGS_CONFIG,
                )
            except rpc.RPCError as e:
                failed.append(f"{fn}: {e.message}")
                continue
            ids.append(bp_id)
            self.functions.append(fn)
        if not ids:
            raise GoleakError(
                f"Delve could not set a tracepoint on any function matching '{self.func}' "
                f"({failed[0]}); pick other functions."
            )
        if failed:
            self.warnings.append(f"{len(failed)} functions could not be traced: {failed[0]}")
        self.hook = ", ".join(self.functions[:5]) + (" ..." if len(self.functions) > 5 else "")
        return ids

    # ---- the runner's callbacks ---------------------------------------------------------
    def wants(self, hits: list[api.Hit]) -> bool:
        if self.max_events is not None and self.events + len(hits) >= self.max_events:
            return False
        return not any(h.hit_goroutines >= HITCOUNT_REFRESH for h in hits)

    def hits(self, hits: list[api.Hit], now_ns: int) -> bool:
        build = self._creation_row if self.func is None else self._call_row
        rows = [build(h, now_ns, self.seq0 + self.events + i) for i, h in enumerate(hits)]
        if self.max_events is not None:
            rows = rows[: max(self.max_events - self.events, 0)]
        if rows:
            self.sink(rows)
            self.events += len(rows)
        if self.max_events is not None and self.events >= self.max_events and self._claim():
            self._max_reached = True
            return False
        return self._finished or not any(h.hit_goroutines >= HITCOUNT_REFRESH for h in hits)

    def halted(self, client: rpc.Client) -> bool:
        if self._max_reached:
            self._close_while_halted(client, "done", f"{self.events} events")
            self._release()
            return False
        if self._finished:
            return False  # stop() is on its way and takes the tracepoints out
        for old in sorted(self.bp_ids):  # Delve's hit-count map is too big: start afresh
            spec = self._specs.pop(old)
            client.clear_breakpoint(old)
            self.bp_ids.discard(old)
            self.bp_ids.add(self._create(client, **spec))
        self.refreshed += 1
        return True

    def ended(self, why: str) -> None:
        if not self._claim():
            return
        if self.server.exit_status is not None:
            self._mark("exited", why)
        elif why == "detached":
            self._mark("stopped", "the target was stopped")
        else:
            self._mark("lost", why)
        self._release()

    def _creation_row(self, hit: api.Hit, now_ns: int, seq: int) -> Row:
        stack, stack_id, frames = self.stacks.intern(hit, True, self.depth)
        site = frames[0] if frames else None
        new_goid = None
        for v in hit.variables():
            if not v.unreadable:
                try:
                    new_goid = int(v.value)
                except ValueError:
                    pass
        return {
            "time": now_ns,
            "seq": seq,
            "goid": hit.goroutine_id,
            "new_goid": new_goid,
            "site": _site_text(site) if site else None,
            "site_func": site[0] if site else None,
            "site_file": site[1] if site else None,
            "site_line": site[2] if site else None,
            "stack": stack,
            "stack_id": stack_id,
            "runtime": is_runtime(site[0] if site else None),
            "source": "delve",
        }

    def _call_row(self, hit: api.Hit, now_ns: int, seq: int) -> Row:
        stack, stack_id, frames = self.stacks.intern(hit, False, self.depth)
        caller = _site_text(frames[1]) if len(frames) > 1 else None
        args = tuple(str(v) for v in hit.arguments())
        return {
            "time": now_ns,
            "seq": seq,
            "goid": hit.goroutine_id,
            # the innermost frame, not the breakpoint: one tracepoint covers inlined copies
            "func": frames[0][0] if frames else hit.function,
            "args": args,
            "caller": caller,
            "stack": stack,
            "stack_id": stack_id,
        }

    # ---- stopping -----------------------------------------------------------------------
    def stop(self, reason: str = "stopped by the user") -> Trace:
        """Take the tracepoints out, note which new goroutines are alive, detach."""
        if self._claim():
            try:
                self.server.run_halted(lambda c: self._close_while_halted(c, "stopped", reason))
            except GoleakError as e:
                self._mark("lost", str(e))
            self.server.remove_handler(self)
            threading.Thread(target=self._release, daemon=True).start()
        self._done.wait(60)
        return self

    def _expire(self) -> None:
        self.stop(f"--duration {self.duration:g}s is over")

    def _claim(self) -> bool:
        """True for the one caller that gets to end the trace."""
        with self._lock:
            if self._finished:
                return False
            self._finished = True
        if self._timer is not None:
            self._timer.cancel()
        return True

    def _close_while_halted(self, client: rpc.Client, state: str, reason: str) -> None:
        for bp in self.bp_ids:
            try:
                client.clear_breakpoint(bp)
            except rpc.DelveError:
                pass
        if self.want_live and self.func is None and self.server.exit_status is None:
            self.live, self.live_at_ns = self._list_live(client)
        self._mark(state, reason)

    def _list_live(self, client: rpc.Client) -> tuple[dict[int, str | None] | None, int]:
        """Every live goroutine -> its go statement, from Delve's goroutine list."""
        live: dict[int, str | None] = {}
        deadline = time.monotonic() + LIVE_BUDGET_S
        try:
            for g in client.iter_goroutines(LIVE_PAGE):
                if time.monotonic() > deadline:
                    self.warnings.append(
                        f"listing the live goroutines took over {LIVE_BUDGET_S:g}s; 'alive' "
                        "is left empty (take a snapshot instead)."
                    )
                    return None, 0
                loc = g.go_statement_loc
                live[g.id] = _site_text(_site(loc)) if loc.pc else None
        except rpc.DelveError as e:
            self.warnings.append(f"could not list the live goroutines ({e}).")
            return None, 0
        return live, time.time_ns()

    def _mark(self, state: str, reason: str) -> None:
        if self.state in ("running", "starting"):
            self.state = state
            self.reason = reason
            self._t1 = time.monotonic()
            self.ended_ns = time.time_ns()

    def _release(self) -> None:
        try:
            self.server.release()
        finally:
            if self._on_done is not None:
                self._on_done(self)
            self._done.set()

    # ---- views ------------------------------------------------------------------------
    @property
    def live_goids(self) -> frozenset[int] | None:
        return None if self.live is None else frozenset(self.live)

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the trace is over (duration, max events, exit, stop)."""
        return self._done.wait(timeout)

    @property
    def elapsed(self) -> float:
        return (self._t1 or time.monotonic()) - self._t0

    def progress(self) -> str:
        rate = self.events / self.elapsed if self.elapsed > 0 else 0.0
        return f"{self.events:,} events, {rate:,.0f}/s, {self.elapsed:.1f}s"

    def summary(self) -> str:
        what = "calls" if self.func else "creations"
        end = f" ({self.reason})" if self.reason else ""
        return f"{self.state}: {self.events:,} {what} in {self.elapsed:.1f}s{end}"

    def __repr__(self) -> str:
        return f"<Trace {self.server.label} {self.summary()}>"


def _runqput_call(client: rpc.Client) -> api.AsmInstruction | None:
    try:
        locs = client.find_location(HOOK_FUNC)
    except rpc.RPCError:
        return None
    if not locs:
        return None
    for ins in client.disassemble(locs[0].pc):
        if ins.dest is not None and ins.dest.function == HOOK_CALL:
            return ins
    return None


def _site(loc: api.Location) -> Site:
    return (loc.function or "?", loc.file, loc.line)


def _site_text(site: Site) -> str:
    func, file, line = site
    return frame_text(func, f"{file}:{line}")
