#!/usr/bin/env bash
# One set-up path for README, CI and Binder.
#   scripts/setup.sh          Python package + Go check + pinned Delve
#   scripts/setup.sh --test   also what the test suite needs: Go 1.27 toolchain, Chromium
# Delve goes into .tools/bin of this checkout; goleak_magic finds it there.
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

command -v go >/dev/null 2>&1 || die "'go' is not on PATH; install Go 1.22 or newer from the Go downloads page (or your package manager) and run this again."
gov="$(go env GOVERSION)"
minor="$(echo "$gov" | sed -nE 's/^go1\.([0-9]+).*/\1/p')"
[ -n "$minor" ] && [ "$minor" -ge 22 ] || die "found $gov; goleak_magic needs Go 1.22 or newer on PATH."
say "Go: $gov"

mkdir -p "$tools"
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
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "installing Debian's chromium for the browser tests"
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
        || die "apt-get install chromium failed."
    else
      die "/usr/bin/chromium is missing; install Debian's 'chromium' package (the browser tests need it)."
    fi
  fi
fi
say "done: dlv at $tools/dlv"
