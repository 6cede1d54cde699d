#!/usr/bin/env bash
# Runs a command that must fail cleanly: expect_error.sh RC REGEX [--absent FILE] -- COMMAND...
# Passes when the command exits with RC, its output matches REGEX (grep -E) on one line, the error is printed once
# (one "error:" line, however many ranks), no hang (ctest's TIMEOUT guards that), and FILE (if given) does not
# exist afterwards.
set -u
want_rc=$1; regex=$2; shift 2
absent=""
if [ "${1:-}" = "--absent" ]; then absent=$2; shift 2; fi
[ "${1:-}" = "--" ] && shift
out=$("$@" 2>&1); rc=$?
echo "$out"
if [ "$rc" -ne "$want_rc" ]; then echo "expect_error: exit code $rc, wanted $want_rc"; exit 1; fi
if ! grep -qE -- "$regex" <<<"$out"; then echo "expect_error: output does not match /$regex/"; exit 1; fi
n=$(grep -c "error:" <<<"$out")
if [ "$n" -ne 1 ]; then echo "expect_error: $n error lines, wanted exactly one"; exit 1; fi
if [ -n "$absent" ] && [ -e "$absent" ]; then echo "expect_error: $absent was written"; exit 1; fi
exit 0
