#!/usr/bin/python3
"""Checkpoints, the watchdog and the stop signals of every training mini-app (docs/checkpoints.md):

  resume APP NP DECK [--set ...]   a run killed (kill -9 via --inject) after its checkpoints and relaunched with
   [--state-only]                  --resume ends with the loss, parameters and gradients of an uninterrupted run, bit
                                   for bit; a corrupted or truncated newest checkpoint is reported, skipped, and the
                                   result is the same (the driver's, checked once per way of writing the state:
                                   --state-only, for a variant of the same writer, checks the resume alone)
  nmt_async                        partrain-nmt's asynchronous replicas resume from their servers' checkpoint after a
                                   replica's first rank is killed; a synchronous checkpoint and a follower fault refused
  universal                        checkpoints written at one layout resume at another (dp 2 → partrain-ref, tp 2 →
                                   dp 2, pp 2 → pp 1, ZeRO stage 3 → stage 0, ring cp 2 x tp 2 → Ulysses cp 2) and
                                   continue as the reference (1e-4)
  universal_ep                     the same for the mixture of experts: ep 2 → partrain-ref, ep 2 x dp 2 → ep 1 x dp 2,
                                   partrain-pp's pp 2 x dp 2 with ep 2 → partrain-ep ep 2
  precision                        a checkpoint resumes across precisions (fp32 -> bf16, bf16 -> fp32, fp16 -> bf16): it
                                   holds fp32 master weights and moments, so the resumed run's first loss is the other
                                   precision's on the same weights (within bf16's sqrt(n)u) and training goes on
  signal                           SIGUSR1 mid-run: the step finishes, a checkpoint and a result file marked incomplete
                                   are written, exit code 3; --resume finishes with the uninterrupted run's loss
  watchdog                         a rank that stalls (--inject stall) ends the job within --timeout with one line
                                   naming what the other rank waited for, exit code 124 — no hang

    check_reliability.py MPIEXEC BUILD_MINIAPPS INPUTS CASE [ARGS ...]
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib

import h5py
import numpy as np

mpiexec, bindir, inputs, case = sys.argv[1:5]
rest = sys.argv[5:]
tmp = tempfile.mkdtemp(prefix="check_rel_")
bad = []


def check(cond, what):
    if not cond:
        bad.append(what)
        print("FAILED:", what, flush=True)


def run(np_, app, args, timeout=240):
    return subprocess.run([mpiexec, "-n", str(np_), os.path.join(bindir, app)] + args, capture_output=True, text=True,
                          timeout=timeout)


def same_dump(a, b, what):
    with h5py.File(a) as x, h5py.File(b) as y:
        check(x["loss"][()] == y["loss"][()], f"{what}: loss {x['loss'][()]} vs {y['loss'][()]}")
        for g in ("params", "grads"):
            for k in y[g]:
                check(np.array_equal(x[g][k][()], y[g][k][()]), f"{what}: {g}/{k} not bit-identical")


def ref_deck(app, args):
    res = tomllib.loads(subprocess.run([os.path.join(bindir, app)] + args + ["--print-deck"], check=True,
                                       capture_output=True, text=True).stdout)

    def toml(t, p=""):
        out = []
        for k, v in t.items():
            out += toml(v, p + k + ".") if isinstance(v, dict) else [f'"{p}{k}" = ' + (f'"{v}"' if isinstance(v, str) else str(v).lower())]
        return out
    path = os.path.join(tmp, "ref.toml")
    with open(path, "w") as f:
        f.write("\n".join(toml({k: res[k] for k in ("model", "data", "train")})) + "\n")
    return path


if case == "resume":
    app, np_, deck = rest[0], int(rest[1]), rest[2]
    state_only = "--state-only" in rest
    args = ["-i", os.path.join(inputs, deck), "--set", "train.steps=8"] + [a for a in rest[3:] if a != "--state-only"]
    ck = os.path.join(tmp, "ck")
    r = run(np_, app, args + ["--dump-state", os.path.join(tmp, "u.h5")])
    check(r.returncode == 0, f"uninterrupted run failed: {r.stderr[-1500:]}")
    r = run(np_, app, args + ["--checkpoint-dir", ck, "--checkpoint-every", "2", "--inject", f"kill:rank={np_ - 1}:step=5"])
    check(r.returncode != 0, "the killed run exited 0")
    files = sorted(glob.glob(os.path.join(ck, "ckpt-*.h5")))
    check([os.path.basename(f) for f in files] == ["ckpt-2.h5", "ckpt-4.h5"], f"checkpoints kept (--keep 2): {files}")
    r = run(np_, app, args + ["--checkpoint-dir", ck, "--resume", "--dump-state", os.path.join(tmp, "r.h5")])
    check(r.returncode == 0 and "# resume: " + os.path.join(ck, "ckpt-4.h5") in r.stdout, f"resume failed:\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
    same_dump(os.path.join(tmp, "r.h5"), os.path.join(tmp, "u.h5"), f"{app} resumed after kill -9")
    if not state_only:
        # One element of a known tensor changed in a copy of the newest checkpoint (the file stays valid HDF5; only its
        # checksum can tell): the resume reports it, skips it and goes on from the older checkpoint.
        bad_dir = os.path.join(tmp, "ck_bad")
        shutil.copytree(ck, bad_dir)
        with h5py.File(os.path.join(bad_dir, "ckpt-4.h5"), "r+") as f:
            name = sorted(f["params"])[0]
            x = f["params"][name][()]
            x.flat[0] += 1.0
            f["params"][name][...] = x
        r = run(np_, app, args + ["--checkpoint-dir", bad_dir, "--resume", "--dump-state", os.path.join(tmp, "r3.h5")])
        check(r.returncode == 0 and f"skipped {os.path.join(bad_dir, 'ckpt-4.h5')}" in r.stdout and
              f"tensor params/{name}: checksum mismatch" in r.stdout and "(step 2)" in r.stdout,
              f"the changed tensor params/{name} was not caught:\n{r.stdout[-1500:]}\n{r.stderr[-800:]}")
        same_dump(os.path.join(tmp, "r3.h5"), os.path.join(tmp, "u.h5"), f"{app} resumed past a corrupted checkpoint")
        # Relaunching without --resume refuses to overwrite; a truncated newest checkpoint is skipped.
        r = run(np_, app, args + ["--checkpoint-dir", ck])
        check(r.returncode == 2 and "holds checkpoints of an earlier run" in r.stderr, "earlier checkpoints not refused")
        newest = max(glob.glob(os.path.join(ck, "ckpt-*.h5")), key=lambda p: int(p.rsplit("-", 1)[1][:-3]))
        with open(newest, "r+b") as f:
            f.truncate(os.path.getsize(newest) // 2)
        r = run(np_, app, args + ["--checkpoint-dir", ck, "--resume", "--dump-state", os.path.join(tmp, "r2.h5")])
        check(r.returncode == 0 and "skipped " + newest in r.stdout, f"the truncated checkpoint was not reported:\n{r.stdout[-1500:]}")
        same_dump(os.path.join(tmp, "r2.h5"), os.path.join(tmp, "u.h5"), f"{app} resumed from the older checkpoint")

elif case == "nmt_async":
    # partrain-nmt's asynchronous replicas checkpoint through their servers (partrain-ps's format): a replica's first
    # rank killed after a checkpoint, the relaunch resumes from it (not bit for bit: asp's update order is timing's);
    # a synchronous run's checkpoint is refused, and a replica's other rank is not a fault target.
    args = ["-i", os.path.join(inputs, "nmt_small.toml"), "--set", "nmt.update=async", "--set", "nmt.model_parallel=2",
            "--set", "train.steps=12"]
    ck = os.path.join(tmp, "ck")
    r = run(5, "partrain-nmt", args + ["--checkpoint-dir", ck, "--checkpoint-every", "4", "--inject", "kill:rank=3:step=9"])
    check(r.returncode != 0, "the killed run exited 0")
    # which clocks the servers reached before the kill is timing's (the other replica may run ahead and take the
    # tickets up to the last checkpoint); that some checkpoint exists and the newest is the one resumed is not
    steps = sorted(int(os.path.basename(f)[5:-3]) for f in glob.glob(os.path.join(ck, "ckpt-*.h5")))
    check(len(steps) >= 1 and set(steps) <= {4, 8, 12}, f"checkpoints at steps {steps}")
    newest = steps[-1] if steps else 0
    out = os.path.join(tmp, "r.h5")
    r = run(5, "partrain-nmt", args + ["--checkpoint-dir", ck, "--resume", "--output", out])
    check(r.returncode == 0 and f"# resume: {ck}/ckpt-{newest}.h5" in r.stdout,
          f"resume failed:\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
    if r.returncode == 0:
        with h5py.File(out) as f:
            check(f.attrs["first_step"] == str(newest) and f.attrs["resumed_from"].endswith(f"ckpt-{newest}.h5"),
                  f"first_step {f.attrs['first_step']}, resumed_from {f.attrs.get('resumed_from')}")
            loss = f["steps/loss"][()]
            check(len(loss) == 12 - newest and np.all(np.isfinite(loss)), f"losses after the resume {loss}")
    sync_ck = os.path.join(tmp, "sync_ck")
    r = run(2, "partrain-nmt", ["-i", os.path.join(inputs, "nmt_small.toml"), "--set", "nmt.model_parallel=2",
                                "--set", "train.steps=4", "--checkpoint-dir", sync_ck, "--checkpoint-every", "2"])
    check(r.returncode == 0, f"synchronous run failed: {r.stderr[-800:]}")
    r = run(5, "partrain-nmt", args + ["--resume", sync_ck])
    check(r.returncode == 2 and "not by parameter servers" in r.stderr, f"a synchronous checkpoint accepted: {r.stderr[-800:]}")
    r = run(5, "partrain-nmt", args + ["--inject", "kill:rank=4:step=2"])
    check(r.returncode == 2 and "rank 4 follows its replica's first rank 3" in r.stderr, f"follower fault: {r.stderr[-800:]}")

elif case in ("universal", "universal_ep"):
    inp = lambda deck: ["-i", os.path.join(inputs, deck)]  # noqa: E731
    G = ["--set", "model.gpt.layers=2", "--set", "model.gpt.seq_len=32", "--set", "train.steps=8", "--set", "train.batch=8"]
    if case == "universal":
        rdeck = ref_deck("partrain-dp", inp("dp_gpt_small.toml") + G)
        pairs = [("dp 2 -> partrain-ref", (2, "partrain-dp", inp("dp_gpt_small.toml")), (1, "partrain-ref", ["-i", rdeck])),
                 ("tp 2 -> dp 2", (2, "partrain-tp", inp("tp_gpt_small.toml")), (2, "partrain-dp", inp("dp_gpt_small.toml"))),
                 ("pp 2 -> pp 1", (2, "partrain-pp", inp("pp_gpt_small.toml")),
                  (1, "partrain-pp", inp("pp_gpt_small.toml") + ["--set", "pp.degree=1"])),
                 ("ZeRO stage 3 -> stage 0", (2, "partrain-zero", inp("zero_gpt_small.toml") + ["--set", "zero.stage=3"]),
                  (2, "partrain-zero", inp("zero_gpt_small.toml") + ["--set", "zero.stage=0"])),
                 ("ring cp 2 x tp 2 -> ulysses cp 2", (4, "partrain-tp", inp("tp_gpt_small.toml") + ["--set", "cp.degree=2"]),
                  (2, "partrain-tp", inp("tp_gpt_small.toml") + ["--set", "tp.degree=1", "--set", "cp.degree=2",
                                                                 "--set", "cp.kind=ulysses"]))]
    else:  # the mixture of experts
        G += ["--set", "model.gpt.channels=64", "--set", "model.gpt.moe.every=1", "--set", "model.gpt.moe.experts=4",
              "--set", "model.gpt.moe.top_k=2", "--set", "model.gpt.moe.capacity_factor=1.25"]
        ep = inp("ep_gpt_moe.toml")
        rdeck = ref_deck("partrain-ep", ep + G)
        pairs = [("ep 2 -> partrain-ref", (2, "partrain-ep", ep), (1, "partrain-ref", ["-i", rdeck])),
                 ("ep 2 x dp 2 -> ep 1 x dp 2", (4, "partrain-ep", ep + ["--set", "ep.degree=2"]),
                  (2, "partrain-ep", ep + ["--set", "ep.degree=1"])),
                 ("pp 2 x dp 2 with ep 2 -> ep 2",
                  (4, "partrain-pp", inp("pp_gpt_small.toml") + ["--set", "ep.degree=2", "--set", "pp.microbatches=2"]),
                  (2, "partrain-ep", ep))]
    r = run(1, "partrain-ref", ["-i", rdeck, "--output", os.path.join(tmp, "ref.h5")])
    ref = h5py.File(os.path.join(tmp, "ref.h5"))["steps/loss"][()]
    for name, src, dst in pairs:
        d = os.path.join(tmp, name.replace(" ", "_"))
        r = run(src[0], src[1], src[2] + G + ["--checkpoint-dir", d, "--checkpoint-every", "4"])
        check(r.returncode == 0, f"{name}: the writing run failed: {r.stderr[-1000:]}")
        out = os.path.join(tmp, name.replace(" ", "_") + ".h5")
        r = run(dst[0], dst[1], dst[2] + G + ["--resume", d, "--output", out])
        check(r.returncode == 0 and "(step 4)" in r.stdout, f"{name}: resuming failed:\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
        if r.returncode == 0:
            with h5py.File(out) as f:
                loss = f["steps/loss"][()]
                check(f.attrs["first_step"] == "4" and len(loss) == 4, f"{name}: first step {f.attrs['first_step']}, {len(loss)} steps")
                e = np.max(np.abs(loss - ref[4:]) / ref[4:]) if len(loss) == 4 else np.inf
                check(e <= 1e-4, f"{name}: losses after the resume differ from the reference's by {e:.2e}")

elif case == "precision":
    G = ["-i", os.path.join(inputs, "ref_gpt_small.toml"), "--set", "model.gpt.layers=2", "--set", "model.gpt.seq_len=32",
         "--set", "train.steps=8"]
    losses = {}
    for p in ("fp32", "bf16", "fp16"):
        out = os.path.join(tmp, f"{p}.h5")
        r = run(1, "partrain-ref", G + ["--set", f"train.precision={p}", "--checkpoint-dir", os.path.join(tmp, p),
                                        "--checkpoint-every", "4", "--output", out])
        check(r.returncode == 0, f"the {p} run failed: {r.stderr[-1000:]}")
        losses[p] = h5py.File(out)["steps/loss"][()] if r.returncode == 0 else None
    tol = (6 + 22 * 2) ** 0.5 * 2.0 ** -8  # bf16's sqrt(n)u for this GPT (docs/precision.md)
    for src, dst in (("fp32", "bf16"), ("bf16", "fp32"), ("fp16", "bf16")):
        out = os.path.join(tmp, f"{src}_to_{dst}.h5")
        r = run(1, "partrain-ref", G + ["--set", f"train.precision={dst}", "--resume", os.path.join(tmp, src),
                                        "--output", out])
        check(r.returncode == 0 and "(step 4)" in r.stdout, f"{src} -> {dst}: resuming failed:\n{r.stdout[-1500:]}\n{r.stderr[-800:]}")
        if r.returncode != 0 or losses[src] is None:
            continue
        with h5py.File(out) as f:
            loss = f["steps/loss"][()]
            check(f.attrs["precision"] == dst and f.attrs["first_step"] == "4" and len(loss) == 4,
                  f"{src} -> {dst}: precision {f.attrs['precision']}, first step {f.attrs['first_step']}")
            e = abs(loss[0] - losses[src][4]) / losses[src][4]  # the same master weights at step 5
            check(e <= tol, f"{src} -> {dst}: the first resumed loss differs from {src}'s by {e:.1e} (tolerance {tol:.2g})")
            check(np.all(np.diff(loss) < 0.5) and np.all(np.isfinite(loss)), f"{src} -> {dst}: losses {loss}")
            print(f"{src} -> {dst}: first resumed loss {loss[0]:.6f} vs {src}'s {losses[src][4]:.6f} ({e:.1e})")

elif case == "signal":
    # SIGUSR1 during step 3 (--inject signal: the rank sends it to itself, so the step is known, whatever the machine's
    # load): the ranks agree to stop at the next boundary, write the checkpoint of 4 steps and a result file marked
    # incomplete, exit 3; --resume finishes the run as an uninterrupted one ends. (The scheduler's own signals reach
    # the ranks in the SLURM tests: scontrol requeue, a node killed.)
    args = ["-i", os.path.join(inputs, "dp_mlp.toml"), "--set", "train.steps=8"]
    ck = os.path.join(tmp, "ck")
    run(2, "partrain-dp", args + ["--output", os.path.join(tmp, "u.h5")])
    r = run(2, "partrain-dp", args + ["--checkpoint-dir", ck, "--inject", "signal:rank=0:step=3",
                                      "--output", os.path.join(tmp, "s.h5")])
    check(r.returncode == 3 and "stopped by SIGUSR1 before step 5" in r.stdout,
          f"exit code {r.returncode}, wanted 3 and a stop before step 5:\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
    with h5py.File(os.path.join(tmp, "s.h5")) as f:
        check(f.attrs["stopped_before_step"] == "5" and f.attrs["complete"] == "false" and len(f["steps/loss"]) == 4,
              f"the result file: stopped before {f.attrs.get('stopped_before_step')}, complete "
              f"{f.attrs['complete']}, {len(f['steps/loss'])} steps")
    check(os.path.exists(os.path.join(ck, "ckpt-4.h5")), "no checkpoint at the stop (step 4)")
    r = run(2, "partrain-dp", args + ["--checkpoint-dir", ck, "--resume", "--output", os.path.join(tmp, "r.h5")])
    with h5py.File(os.path.join(tmp, "r.h5")) as f, h5py.File(os.path.join(tmp, "u.h5")) as g:
        check(f["steps/loss"][-1] == g["steps/loss"][-1] and f.attrs["complete"] == "true",
              f"the resumed run ends at {f['steps/loss'][-1]}, the uninterrupted at {g['steps/loss'][-1]}")
        check(len(f.attrs["attempts"].split(",")) == 2, f"attempts {f.attrs['attempts']}")
        check(f.attrs["first_step"] == "4" and len(f["steps/loss"]) == 4, "the resumed run's steps")
        check("over ranks, 1 timed step)" in r.stdout and f.attrs["warmup_steps"] == 3,
              f"a resumed run of 4 steps with 3 warm-up steps (dp_mlp.toml) times 1:\n{r.stdout[-800:]}")

elif case == "watchdog":
    # Rank 1 stalls at step 3 (0-based): rank 0 waits in step 4's collectives, and its watchdog ends the job. The
    # watchdog looks at its clock every few waiting turns, so it fires soon after the timeout — not 5x later; its line
    # says how long it waited, which must be at least the timeout (by construction) and at most the timeout plus the
    # time between two looks (bounded here by 2 s).
    T = 2
    for app, np_, deck, extra in [("partrain-dp", 2, "dp_mlp.toml", []),
                                  ("partrain-pp", 2, "pp_gpt_small.toml", ["--set", "model.gpt.layers=2", "--set", "model.gpt.seq_len=32"])]:
        r = run(np_, app, ["-i", os.path.join(inputs, deck), "--set", "train.steps=10", "--inject", "stall:rank=1:step=3",
                           "--timeout", str(T)] + extra, timeout=120)
        lines = [l for l in (r.stdout + r.stderr).splitlines() if "watchdog" in l]
        check(r.returncode == 124, f"{app}: exit code {r.returncode}, wanted 124")
        check(len(lines) >= 1 and "in step 4" in lines[0] and f"--timeout {T}" in lines[0], f"{app}: watchdog line {lines}")
        m = re.search(r"waited ([0-9.]+) s", lines[0]) if lines else None
        check(m is not None and T <= float(m.group(1)) <= T + 2, f"{app}: the watchdog fired after "
              f"{m.group(1) if m else '?'} s, not within 2 s of --timeout {T}")
else:
    sys.exit(f"unknown case {case}")

shutil.rmtree(tmp, ignore_errors=True)
print("ok" if not bad else f"{len(bad)} failed")
sys.exit(1 if bad else 0)
