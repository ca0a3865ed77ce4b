#!/usr/bin/env bash
# One set-up path for README, CI and Binder.
#   scripts/setup.sh          Python package + Go check + pinned Delve
#   scripts/setup.sh --test   also what the test suite needs: Go 1.27 toolchain, Chromium,
#                             Prometheus (Debian's package; its service is left stopped)
# Delve goes into .tools/bin of this checkout; goleak_magic finds it there.
# The package goes into the active virtual environment or conda env, else into a
# project-local .venv; .tools/python then runs the chosen Python (the Makefile uses it).
set -euo pipefail

DELVE_VERSION=v1.27.2
GO127=go1.27.3
GO_TOO_OLD=go1.21.13  # the "Go too old" test runs a real old toolchain
GO_OLDEST=go1.22.12  # the oldest supported Go: traced in the tests
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$here/.tools/bin"
py="${PYTHON:-python3}"
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

die() { echo "setup: $*" >&2; exit 1; }
say() { echo "setup: $*" >&2; }
# apt_install PACKAGE WHY ADVICE [APT-GET OPTIONS]: with --test as root on Debian/Ubuntu
# install PACKAGE, else stop with ADVICE (the one sentence saying what to install).
apt_install() {
  if [ "$want_test" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's $1 ($2)"
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${@:4}" "$1" >/dev/null; } \
      || die "apt-get install $1 failed."
  else
    die "$3"
  fi
}

command -v "$py" >/dev/null 2>&1 || die "'$py' is not on PATH; install Python 3.11 or newer and run this again."
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  || die "found $("$py" --version 2>&1) at $(command -v "$py"); goleak_magic needs Python 3.11 or newer: put one first on PATH (or set PYTHON=/path/to/python3) and run this again."
# A system Python is externally managed (PEP 668: pip refuses to install into it), so
# outside an active venv or conda env (Binder's) the package goes into .venv here.
if ! "$py" -c 'import os, sys; sys.exit(sys.prefix == sys.base_prefix and not os.path.isdir(sys.prefix + "/conda-meta"))'; then
  venv="$here/.venv"
  if ! "$venv/bin/python" -c '' 2>/dev/null; then
    # Debian and Ubuntu ship venv's ensurepip separately, in python3-venv.
    "$py" -c 'import ensurepip' 2>/dev/null || apt_install python3-venv "to create $venv" \
      "$py cannot create a virtual environment because its ensurepip module is missing; on Debian/Ubuntu install it with 'apt-get install python3-venv' (or activate a virtual environment of your own) and run this again."
    say "creating $venv with $(command -v "$py")"
    "$py" -m venv --clear "$venv" || die "could not create $venv with $py (see above)."
  fi
  py="$venv/bin/python"
fi
say "Python: $("$py" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
mkdir -p "$tools"
# A launcher, not a symlink: a venv's python must be run by its own path to be that venv.
printf '#!/bin/sh\nexec "%s" "$@"\n' "$("$py" -c 'import sys; print(sys.executable)')" >"$here/.tools/python"
chmod +x "$here/.tools/python"

command -v go >/dev/null 2>&1 || die "'go' is not on PATH; install Go 1.22 or newer from the Go downloads page (or your package manager) and run this again."
gov="$(go env GOVERSION)"
minor="$(echo "$gov" | sed -nE 's/^go1\.([0-9]+).*/\1/p')"
[ -n "$minor" ] && [ "$minor" -ge 22 ] || die "found $gov; goleak_magic needs Go 1.22 or newer on PATH."
say "Go: $gov"

if [ -x "$tools/dlv" ] && "$tools/dlv" version 2>/dev/null | grep -q "Version: ${DELVE_VERSION#v}"; then
  say "Delve ${DELVE_VERSION} already in $tools"
else
  say "installing Delve ${DELVE_VERSION} into $tools"
  GOBIN="$tools" GOFLAGS=-buildvcs=false go install "github.com/go-delve/delve/cmd/dlv@${DELVE_VERSION}" \
    || die "could not install Delve ${DELVE_VERSION} with 'go install'; check that the Go module proxy is reachable."
fi

# The execution-trace converter (goleak_magic/tracecv, pinned golang.org/x/exp): %gotrace
# finds it here, else builds it into ~/.cache/goleak_magic on first use.
say "building the trace converter into $tools"
(cd "$here/goleak_magic/tracecv" && GOFLAGS=-buildvcs=false go build -o "$tools/tracecv" .) \
  || die "could not build goleak_magic/tracecv; check that the Go module proxy is reachable (it fetches golang.org/x/exp)."

extra=""
[ "$want_test" = 1 ] && extra="[test]"
say "installing the Python package${extra:+ with test extras}"
"$py" -m pip install -q -e "$here$extra" || die "pip install of goleak_magic failed (see above)."

if [ "$want_test" = 1 ]; then
  for tc in "$GO127" "$GO_OLDEST" "$GO_TOO_OLD"; do
    say "fetching the $tc toolchain (tests run on Go 1.26 and 1.27, and check that older Go is refused)"
    GOTOOLCHAIN="$tc" go version >/dev/null || die "could not fetch $tc through the Go module proxy."
  done
  [ -x /usr/bin/chromium ] || apt_install chromium "for the browser tests" \
    "/usr/bin/chromium is missing; install Debian's 'chromium' package (the browser tests need it)."
  if ! command -v prometheus >/dev/null; then
    apt_install prometheus "for the fleet tests: they run their own on 127.0.0.1" \
      "'prometheus' is missing; install Debian's 'prometheus' package (the fleet tests run it)." \
      --no-install-recommends
    # The package's own service listens on every interface; the tests never use it.
    if [ -d /run/systemd/system ]; then systemctl disable --now prometheus >/dev/null 2>&1 || true
    else service prometheus stop >/dev/null 2>&1 || true; fi
  fi
fi
say "done: dlv at $tools/dlv"
