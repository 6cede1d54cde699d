#!/usr/bin/env bash
# Runs a command that must fail cleanly:
#   expect_error.sh RC REGEX [--absent FILE] [--unchanged FILE] -- COMMAND...
# Passes when the command exits with RC, its output matches REGEX (grep -E) on one line, the error is printed once
# (one "error:" line, however many ranks), no hang (ctest's TIMEOUT guards that), FILE of --absent (removed first)
# does not exist afterwards, and FILE of --unchanged has the same bytes as before.
set -u
want_rc=$1; regex=$2; shift 2
absent=""; unchanged=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case $1 in
    --absent) absent=$2; case $absent in */tests/fault/matrix/*) rm -rf "$absent" ;; esac; shift 2 ;;
    --unchanged) unchanged=$2; shift 2 ;;
    *) echo "expect_error: unknown option $1"; exit 1 ;;
  esac
done
[ "${1:-}" = "--" ] && shift
before=""
if [ -n "$unchanged" ]; then before=$(md5sum < "$unchanged") || { echo "expect_error: $unchanged is missing"; exit 1; }; fi
out=$("$@" 2>&1); rc=$?
echo "$out"
if [ "$rc" -ne "$want_rc" ]; then echo "expect_error: exit code $rc, wanted $want_rc"; exit 1; fi
if ! grep -qE -- "$regex" <<<"$out"; then echo "expect_error: output does not match /$regex/"; exit 1; fi
n=$(grep -c "error:" <<<"$out")
if [ "$n" -ne 1 ]; then echo "expect_error: $n error lines, wanted exactly one"; exit 1; fi
if [ -n "$absent" ] && [ -e "$absent" ]; then echo "expect_error: $absent was written"; exit 1; fi
if [ -n "$unchanged" ] && [ "$(md5sum < "$unchanged")" != "$before" ]; then echo "expect_error: $unchanged was changed"; exit 1; fi
exit 0
