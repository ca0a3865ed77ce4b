"""%golaunch through a real IPython InteractiveShell, as a notebook cell runs it."""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets import TraitError

import goleak_magic
from goleak_magic.settings import Settings
from goleak_magic.target import Target

from .conftest import PROGRAMS, pid_alive, wait_for


def test_golaunch_returns_a_live_target(ip: InteractiveShell) -> None:
    t = ip.run_line_magic("golaunch", "example:spawn --name sp --detail -- -n 50")
    assert isinstance(t, Target) and t.name == "sp" and t.detail
    assert "schedtrace=100" in t.godebug  # %config reached the session
    wait_for(lambda: len(t.tables["sched"]) >= 3, what="rows")
    n = len(t.sched)
    wait_for(lambda: len(t.sched) > n, what="the table to grow")
    assert goleak_magic.session().targets["sp"] is t

    listing = ip.run_line_magic("golaunch", "--list")
    assert isinstance(listing, pd.DataFrame)
    row = listing.set_index("name").loc["sp"]
    assert row.state == "running" and row.pid == t.pid and row.sched_rows >= 3

    ip.run_line_magic("golaunch", "--stop sp")
    assert t.state == "stopped" and not pid_alive(t.pid)


def test_logs_and_kill(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    t = ip.run_line_magic("golaunch", "example:spawn --name lg -- -n 7")
    wait_for(lambda: t.log_lines(5, stream="stdout"), what="output")
    ip.run_line_magic("golaunch", "--logs lg")
    assert "stdout: created=7" in capsys.readouterr().out
    ip.run_line_magic("golaunch", "--kill lg")
    assert t.state == "killed"


def test_bad_input_is_one_line_usage_error(ip: InteractiveShell) -> None:
    for line, expected in [
        ("/no/such/path", "does not exist"),
        ("", "say what to launch"),
        ("--stop ghost", "no target named 'ghost'"),
        ("example:spawn --schedtrace 0", "positive number of milliseconds"),
        ("example:spawn --env NOEQUALS", "--env takes KEY=VALUE"),
    ]:
        with pytest.raises(UsageError) as e:
            ip.run_line_magic("golaunch", line)
        assert expected in str(e.value) and "\n" not in str(e.value)


def test_cell_shows_no_traceback(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    result = ip.run_cell("%golaunch /no/such/path")
    assert isinstance(result.error_in_exec, UsageError)
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert "does not exist" in out.out + out.err


def test_help_is_there(ip: InteractiveShell) -> None:
    doc = ip.find_line_magic("golaunch").__doc__
    assert "--detail" in doc and "--attach" in doc and "example:NAME" in doc


def test_unload_stops_targets(ip: InteractiveShell) -> None:
    t = ip.run_line_magic("golaunch", "example:spawn --name un -- -n 3")
    ip.run_line_magic("unload_ext", "goleak_magic")
    assert not pid_alive(t.pid)


def test_config_refuses_a_bad_value_at_once(
    ip: InteractiveShell, caplog: pytest.LogCaptureFixture
) -> None:
    magics = ip.magics_manager.registry["GoleakMagics"]
    for line, expected in [
        ("schedtrace_ms = 0", "GoleakMagics.schedtrace_ms takes a whole number greater than 0"),
        ("max_rows = -5", "GoleakMagics.max_rows takes a whole number greater than 0, not -5"),
        ("startup_timeout = 0", "GoleakMagics.startup_timeout takes a number of seconds"),
        ("stop_timeout = -1", "GoleakMagics.stop_timeout takes a number of seconds 0 or more"),
    ]:
        name, _, value = line.partition(" = ")
        with pytest.raises(TraitError, match=expected):
            setattr(magics, name, float(value) if "timeout" in name else int(value))
        caplog.clear()
        ip.run_line_magic("config", f"GoleakMagics.{line}")  # %config logs the error
        assert [r.getMessage() for r in caplog.records if expected in r.getMessage()]
    settings = goleak_magic.session().settings
    assert settings.schedtrace_ms == 100 and settings.max_rows == Settings.max_rows  # kept
    ip.run_line_magic("config", "GoleakMagics.stop_timeout = 0")  # 0: SIGKILL at once
    assert settings.stop_timeout == 0
    # The shell's own config keeps what %config refused; a later load_ext would read it.
    for name, value in [("schedtrace_ms", 100), ("max_rows", Settings.max_rows),
                        ("startup_timeout", Settings.startup_timeout),
                        ("stop_timeout", Settings.stop_timeout)]:  # fmt: skip
        ip.run_line_magic("config", f"GoleakMagics.{name} = {value}")


def test_quoted_arguments_lose_their_quotes(ip: InteractiveShell) -> None:
    """Every magic splits its line as a shell does: a quoted --url reaches pprof bare."""
    prog = PROGRAMS / "pprofserver"
    t = ip.run_line_magic("golaunch", f"'{prog}' --name pq --no-agent -- -n 6")
    line = wait_for(
        lambda: next((ln for ln in t.log_lines(20, "stdout") if ln.startswith("pprof=")), None),
        what="the pprof address",
    )
    url = str(line).removeprefix("pprof=")
    ip.run_line_magic("schedsnap", f'pq --source pprof --url "{url}" -o snap')
    snap = ip.user_ns["snap"]
    assert set(snap["source"]) == {"pprof"}
    assert (snap["top"].str.startswith("main.park ")).sum() == 6
