"""The named goroutine predicates (``dumps.filters``) on frames taken from the captured
dumps (tests/fixtures/exit_*), with literal expected values."""

from __future__ import annotations

import pytest

from goleak_magic.dumps import filters

GOROOT = "/usr/local/go/src/"


@pytest.mark.parametrize(
    ("func", "first", "shown"),
    [
        ("main.main", True, True),
        ("internal/sync.runtime_SemacquireMutex", True, True),  # not package runtime
        ("runtime.gopark", True, False),
        ("runtime.chanrecv1", False, False),
        ("runtime.goexit", False, False),
        ("runtime.Gosched", True, True),  # exported
        ("runtime.(*scavengerState).park", False, False),
        ("runtime.gcenable.gowrap1", False, False),  # the go statement's wrapper
        ("main.main.gowrap1", False, False),
        ("panic", True, False),  # runtime.gopanic on top: hidden
        ("panic", False, True),  # below the top: shown
        ("runtime.runFinalizers", False, True),
        ("_cgoexp_f66bfe4b2639_goCallback", False, False),
        ("time.Sleep", True, True),
    ],
)
def test_shown_as_a_default_traceback_prints(func: str, first: bool, shown: bool) -> None:
    assert filters.shown(func, first) is shown


@pytest.mark.parametrize(
    ("start", "user_code", "system"),
    [
        ("runtime.forcegchelper", False, True),
        ("runtime.gcenable.gowrap1", False, True),
        ("runtime.mstart", False, True),  # goroutine 0 of a SIGQUIT dump
        ("runtime.main", False, False),
        ("runtime.cgocallback", False, False),  # a C thread's call into Go
        ("runtime.runFinalizers", True, False),  # running the program's finalizer
        ("main.main.func1", True, False),
        (None, False, False),
    ],
)
def test_is_system(start: str | None, user_code: bool, system: bool) -> None:
    assert filters.is_system(start, user_code) is system


def in_goroot(loc: str) -> bool:
    return loc.startswith(GOROOT)


@pytest.mark.parametrize(
    ("frames", "created_by", "testing"),
    [
        # main of a test binary: testing.(*M).Run under the generated main
        ([("testing.(*T).Run", GOROOT + "testing/testing.go:2109"),
          ("testing.runTests", GOROOT + "testing/testing.go:2583"),
          ("testing.(*M).Run", GOROOT + "testing/testing.go:2443"),
          ("main.main", "_testmain.go:48")], None, True),
        # the -test.timeout alarm
        ([("testing.(*M).startAlarm.func1", GOROOT + "testing/testing.go:2802")],
         "time.goFunc", True),
        # a test's own goroutine: it runs the test function
        ([("testing.(*T).Run", GOROOT + "testing/testing.go:2109"),
          ("exitdumps/timeout.TestHang", "/w/exitdumps/timeout/timeout_test.go:11"),
          ("testing.tRunner", GOROOT + "testing/testing.go:2036")], "testing.(*T).Run", False),
        # a goroutine the test started
        ([("exitdumps/timeout.TestHang.func1.1", "/w/exitdumps/timeout/timeout_test.go:15")],
         "exitdumps/timeout.TestHang.func1", False),
        # the standard library's own, not testing's
        ([("os/signal.signal_recv", GOROOT + "runtime/sigqueue.go:152")],
         "os/signal.Notify.func1.1", False),
    ],
)  # fmt: skip
def test_is_testing(frames: list[tuple[str, str]], created_by: str | None, testing: bool) -> None:
    assert filters.is_testing(frames, created_by, in_goroot) is testing


def test_agent_and_goroot() -> None:
    assert filters.agent_label({"goleak_magic": "agent"})
    assert not filters.agent_label({"goleak_magic": "other"}) and not filters.agent_label(None)
    assert filters.agent_code("/w/dumpgen/zz_goleak_magic_agent.go:118")
    assert not filters.agent_code("/w/dumpgen/main.go:50") and not filters.agent_code(None)
    assert filters.goroot_of("sync.(*Mutex).Lock", GOROOT + "sync/mutex.go:46") == GOROOT
    assert filters.goroot_of("main.main", "/w/main.go:3") is None
