#!/usr/bin/env bash
# The Python tools' command lines (tools/analysis/*.py, benchmarks/peer/*.py): --help exits 0 and prints a whole
# description (its last line ends with a full stop) and help text for every argument, without torch (a fake torch module that
# fails on import stands in for it: no --help may need it); bad input -- a missing file, a foreign text or HDF5 file,
# an --out whose directory cannot be created -- is exactly one line 'TOOL: error: WHAT = VALUE: why' on stderr, exit
# code 2, no traceback. Positive path: plot_predict.py draws partrain-predict's --csv table. No MPI job is run (the
# HDF5 inputs are results/reference's files), no torch is needed.
#   test_python_tools.sh REPO BUILD_DIR
set -u
repo=$1; build=$2
cd "$repo" || exit 2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
fails=0
ok() { echo "ok: $1"; }
no() { echo "FAILED: $1"; fails=$((fails + 1)); }
py=/usr/bin/python3
A=tools/analysis
P=benchmarks/peer
mkdir "$d/notorch"
echo 'raise ImportError("torch hidden by test_python_tools.sh")' > "$d/notorch/torch.py"

# The help text: a description after the usage whose last line ends with '.', and every argument (each option the
# usage names, each entry of the argument sections) with help text.
cat > "$d/help.py" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines and lines[0].startswith("usage:"), "no usage line"
i = 0
while i < len(lines) and lines[i].strip():
    i += 1
usage = " ".join(lines[:i])
while i < len(lines) and not lines[i].strip():
    i += 1
desc = []
while i < len(lines) and lines[i].strip():
    desc.append(lines[i])
    i += 1
assert desc and not desc[0].endswith(":"), "no description"
assert desc[-1].rstrip().endswith("."), f"description cut: {desc[-1]!r}"
helped, entries = {}, 0
section = False
for j, line in enumerate(lines[i:], i):
    if re.match(r"^(positional arguments|options|optional arguments):$", line):
        section = True
    elif not line.strip():
        section = False
    elif section and re.match(r"^  \S", line):
        entries += 1
        invocation, _, rest = line.strip().partition("  ")
        nxt = lines[j + 1] if j + 1 < len(lines) else ""
        has = bool(rest.strip()) or bool(re.match(r"^   +\S", nxt))
        for name in invocation.split(", "):
            helped[name.split(" ")[0]] = has
assert entries, "no argument sections"
no_help = [n for n, h in helped.items() if not h]
assert not no_help, f"no help text for {no_help}"
in_usage = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", usage.split(":", 1)[1]))
undescribed = sorted(in_usage - set(helped))
assert not undescribed, f"in the usage but not described: {undescribed}"
PY
# run NAME ARGS...: the tool's stdout, stderr and exit code in $d/NAME.{out,err,rc}, torch hidden
run() {
  local name=$1; shift
  PYTHONPATH="$d/notorch" timeout 60 "$py" "$@" > "$d/$name.out" 2> "$d/$name.err"
  echo $? > "$d/$name.rc"
}
# bad NAME TOOL ARGS...: exit code 2, one line 'TOOL: error: WHAT = VALUE: why' on stderr, no traceback
bad() {
  local name=$1 tool=$2; shift 2
  run "$name" "$@"
  local rc n
  rc=$(cat "$d/$name.rc"); n=$(wc -l < "$d/$name.err")
  if [ "$rc" -eq 2 ] && [ "$n" -eq 1 ] && grep -qE "^$tool: error: [^=]+ = .*: .+" "$d/$name.err" \
     && ! grep -q Traceback "$d/$name.out" "$d/$name.err"; then
    ok "$name: $(cat "$d/$name.err")"
  else
    no "$name: exit code $rc, $n lines on stderr:"; cat "$d/$name.err"
  fi
}

# --help of every tool
for tool in $A/plot_predict.py $A/plot_ps.py $A/plot_scaling.py $A/plot_timeline.py $P/compare_dp.py \
            $P/compare_reference.py $P/torch_check.py $P/torch_ddp.py $P/torch_nmt.py $P/torch_reference.py; do
  name=$(basename "$tool" .py)
  run "help_$name" "$tool" --help
  if [ "$(cat "$d/help_$name.rc")" -ne 0 ] || grep -q Traceback "$d/help_$name.err"; then
    no "$name --help: exit code $(cat "$d/help_$name.rc")"; cat "$d/help_$name.err"
  elif why=$("$py" "$d/help.py" "$d/help_$name.out" 2>&1); then
    ok "$name --help"
  else
    no "$name --help: $(tail -1 <<<"$why")"
  fi
done
# peer_run.py is a module the peer scripts import: run directly, one line saying so, exit 2
run peer_run $P/peer_run.py --help
[ "$(cat "$d/peer_run.rc")" -eq 2 ] && [ "$(wc -l < "$d/peer_run.err")" -eq 1 ] && grep -q "helper module" "$d/peer_run.err" \
  && ok "peer_run.py run directly: $(cat "$d/peer_run.err")" || { no "peer_run.py run directly"; cat "$d/peer_run.err"; }

# foreign inputs: a text file, an HDF5 file that is not a partrain file, a partrain result of another app
printf 'hello, world\nnot a table\n' > "$d/text.csv"
cp "$d/text.csv" "$d/text.h5"
"$py" -c "import h5py, sys; h5py.File(sys.argv[1], 'w').attrs['x'] = 1" "$d/plain.h5"
# results/reference's files of partrain-dp, -ps and -pp (the first of each)
read -r dp ps pp < <("$py" - <<'PY'
import glob, h5py
first = {}
for p in sorted(glob.glob("results/reference/*/*/results/*.h5")):
    with h5py.File(p, "r") as f:
        first.setdefault(f.attrs.get("strategy"), p)
print(first.get("dp", "-"), first.get("ps", "-"), first.get("pp", "-"))
PY
)
for f in "$dp" "$ps" "$pp"; do [ -f "$f" ] || no "results/reference lacks a result of partrain-dp, -ps or -pp"; done
noout="$d/text.csv/sub/x.png"  # its directory cannot be created: a file is in the way

# plot_predict.py: the positive path, then the errors
"$build/tools/partrain-predict" --deck inputs/dp_gpt_small.toml --profile inputs/machines/h100_nvlink_ndr.toml \
  --ranks 1:8 --csv "$d/t.csv" > "$d/predict.log" 2>&1 || { no "partrain-predict --csv"; cat "$d/predict.log"; }
run predict_plot $A/plot_predict.py "$d/t.csv" --out "$d/new/dir/t.png"
[ "$(cat "$d/predict_plot.rc")" -eq 0 ] && [ -s "$d/new/dir/t.png" ] && ok "plot_predict.py draws the table (--out's directory created)" \
  || { no "plot_predict.py on partrain-predict's table"; cat "$d/predict_plot.err"; }
bad predict_missing plot_predict.py $A/plot_predict.py "$d/no_such.csv"
bad predict_text plot_predict.py $A/plot_predict.py "$d/text.csv"
bad predict_hdf5 plot_predict.py $A/plot_predict.py "$d/plain.h5"
bad predict_out plot_predict.py $A/plot_predict.py "$d/t.csv" --out "$noout"

bad ps_missing plot_ps.py $A/plot_ps.py "$d/no_such.h5"
bad ps_text plot_ps.py $A/plot_ps.py "$d/text.h5"
bad ps_hdf5 plot_ps.py $A/plot_ps.py "$d/plain.h5"
bad ps_other_app plot_ps.py $A/plot_ps.py "$ps" "$dp"
bad ps_out plot_ps.py $A/plot_ps.py "$ps" --out "$noout"

bad timeline_missing plot_timeline.py $A/plot_timeline.py "$d/no_such.h5"
bad timeline_text plot_timeline.py $A/plot_timeline.py "$d/text.h5"
bad timeline_hdf5 plot_timeline.py $A/plot_timeline.py "$d/plain.h5"
bad timeline_other_app plot_timeline.py $A/plot_timeline.py "$dp"
bad timeline_step plot_timeline.py $A/plot_timeline.py "$pp" --step 9999
bad timeline_out plot_timeline.py $A/plot_timeline.py "$pp" --out "$noout"

S=(--compare "$build/tools/partrain-compare")
bad scaling_missing plot_scaling.py $A/plot_scaling.py "$d/no_such.h5" --out "$d/plots" "${S[@]}"
bad scaling_text plot_scaling.py $A/plot_scaling.py "$d/text.h5" --out "$d/plots" "${S[@]}"
bad scaling_hdf5 plot_scaling.py $A/plot_scaling.py "$d/plain.h5" --out "$d/plots" "${S[@]}"
bad scaling_out plot_scaling.py $A/plot_scaling.py "$(dirname "$dp")" --out "$d/text.csv/plots" "${S[@]}"
bad scaling_compare plot_scaling.py $A/plot_scaling.py "$(dirname "$dp")" --out "$d/plots" --compare "$d/no_such"
[ ! -e "$d/plots" ] && ok "plot_scaling.py: nothing created on bad input" || no "plot_scaling.py created --out on bad input"

# the peer scripts: bad input before anything runs (no torch, no MPI)
bad check_missing torch_check.py $P/torch_check.py "$d/no_such.h5"
bad check_text torch_check.py $P/torch_check.py "$d/text.h5"
bad check_result torch_check.py $P/torch_check.py "$dp"
bad nmt_missing torch_nmt.py $P/torch_nmt.py --check "$d/no_such.h5"
bad nmt_text torch_nmt.py $P/torch_nmt.py --check "$d/text.h5"
bad compare_dp_build compare_dp.py $P/compare_dp.py --build "$d/no_such"
bad compare_reference_build compare_reference.py $P/compare_reference.py --build "$d/no_such"
bad ddp_steps torch_ddp.py $P/torch_ddp.py --steps 0
bad reference_steps torch_reference.py $P/torch_reference.py --model mlp --steps 0

[ $fails -eq 0 ] && echo "python tools: ok" || echo "python tools: $fails FAILED"
exit $((fails > 0))
