#!/usr/bin/python3
"""partrain-ps against what docs/ps.md promises, one case per ctest:

  exact       bsp (and half_sync) equal partrain-dp on the same work: bit for bit at 1 and 2 workers (the server sums
              two gradients as the allreduce does), within 1e-5 at 3 (with a batch of 64 too: uneven shares); at 1-3
              servers, with and without a scheduler;
              in bf16 and fp16 (fp32 master weights on the servers) bit for bit against partrain-dp reducing in fp32
              (fp16 where no step overflows: a shard skips only its own update, partrain-dp the whole step); fp16
              from a loss scale that overflows: shards skip and back off
  result      every mode's result file on the MLP and the GPT: the shared checks, /ps/*, every update applied
              (none lost), the loss below a threshold within the step budget (the synchronous modes, whose runs are
              the same every time; asp's and ssp's are printed); plot_ps.py draws them
  ssp         what every arrival order guarantees: s = 0 keeps the clock gap at 0 and staleness below W; with one
              worker ssp and asp are bsp bit for bit; a bound no run can reach never holds; with a straggler, ssp's
              gap stays within s; the delayed buffer's pushes carry 1 to D + 1 mini-batches and lose no sample
              (the rules themselves: tests/unit/test_ps_rules.cpp)
  restart     a worker killed (SIGKILL: MPICH takes the job down) and the job relaunched with --resume: the dump
              equals an uninterrupted run's; a corrupt newest checkpoint is skipped
  membership  a worker that stalls is removed: the run completes with its data redistributed (fp64 losses equal the
              unfailed run's within 1e-9), the event in the result file
  join        a spare joining at a planned clock equals the run that had the same workers from that clock on
              (checkpointed, resumed with one more worker) bit for bit, at 1 and 2 servers; a spare admitted in
              place of a stalled worker: the fp64 dump equals the unfailed run's within 1e-9, removal then join in
              the timeline; two spares joining as servers, each taking a shard over (fp32 master weights, AdamW
              state, fp16 scaler) at clocks 2 and 5: bit for bit the run of 4 servers on the same shards (fp16); a
              spare never needed idles
  backup      a server that stalls: its backup is promoted and the dump equals the unfailed run's exactly
  takeover    the scheduler stalls, or server 0 coordinating without one: the next rank coordinates; dump exact

    check_ps.py MPIEXEC PARTRAIN_PS PARTRAIN_DP DECK CASE [--set KEY=VALUE ...]

The --set arguments after CASE apply to every run of the case (the suite runs restart and takeover in fp16: the
servers' fp32 master weights, moments and loss scalers through checkpoints, replicas and promotions, bit for bit).
"""
import os
import subprocess
import sys
import tempfile
import tomllib

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_checks import check_training_result  # noqa: E402

mpiexec, ps, dp, deck, case = sys.argv[1:6]
bad = []
tmp = tempfile.mkdtemp(prefix="check_ps_")
SMALL = ["--set", "model.kind=mlp", "--set", "model.mlp.widths=[64,64,64,10]", "--set", "train.batch=24",
         "--set", "train.steps=8", "--set", "train.warmup=1"] + sys.argv[6:]
FAST = ["--set", "ps.heartbeat_timeout_ms=1500"]  # a healthy rank starved that long on a loaded machine is not likely


def check(cond, what):
    if not cond:
        bad.append(what)
        print("FAILED:", what, flush=True)


def run(np_, app, args, expect_rc=0, label=""):
    cmd = [mpiexec, "-n", str(np_), app, "-i", deck] + args
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    if expect_rc is not None and r.returncode != expect_rc:
        check(False, f"{label or ' '.join(args)}: exit code {r.returncode}, wanted {expect_rc}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    elif expect_rc == 0:
        check("self-check: PASS" in r.stdout, f"{label}: no self-check PASS\n{r.stdout[-2000:]}")
    return r


def path(name):
    return os.path.join(tmp, name)


def dp_deck(args):
    """partrain-ps's resolved deck without [ps] (and with --set args applied), for partrain-dp."""
    r = subprocess.run([ps, "-i", deck] + args + ["--print-deck"], check=True, capture_output=True, text=True)
    resolved = tomllib.loads(r.stdout)

    def toml(t, prefix=""):
        out = []
        for k, v in t.items():
            if isinstance(v, dict):
                out += toml(v, prefix + k + ".")
            else:
                out.append(f'"{prefix}{k}" = ' + (f'"{v}"' if isinstance(v, str) else str(v).lower()))
        return out
    p = path(f"dp{len(os.listdir(tmp))}.toml")
    with open(p, "w") as f:
        f.write("\n".join(toml({k: resolved[k] for k in ("model", "data", "train")})) + "\n")
    return p


def dumps_equal(a, b, rtol, what):
    with h5py.File(a) as x, h5py.File(b) as y:
        for g in ("params", "grads"):
            check(sorted(x[g]) == sorted(y[g]), f"{what}: {g} names differ")
            for name in y[g]:
                u, v = x[g][name][()], y[g][name][()]
                if rtol == 0:
                    check(np.array_equal(u, v), f"{what}: {g}/{name} not bit-identical "
                          f"(max |diff| {np.max(np.abs(u - v)):.3e})")
                else:
                    e = np.linalg.norm(u - v) / max(np.linalg.norm(v), 1e-30)
                    check(e <= rtol, f"{what}: {g}/{name} relative error {e:.2e} > {rtol}")
        check(abs(x["loss"][()] - y["loss"][()]) <= max(rtol, 1e-12) * abs(y["loss"][()]), f"{what}: loss differs")


def losses(h5):
    with h5py.File(h5) as f:
        return f["steps/loss"][()]


def events(h5):
    with h5py.File(h5) as f:
        return f["ps/events"][()].reshape(-1, 4), str(f.attrs["ps_events"])


if case == "exact":
    for s, w, sched, extra in [(1, 1, False, []), (1, 2, False, []), (2, 2, False, []), (2, 2, True, []),
                               (3, 2, False, []), (1, 3, False, []),
                               (1, 3, False, ["--set", "train.batch=64"]),  # uneven shares: 22 + 21 + 21, as partrain-dp
                               (1, 2, False, ["--set", "ps.mode=half_sync", "--set", "ps.jitter_ms=5"]),
                               (2, 2, False, ["--set", "train.precision=bf16"]),
                               (2, 2, False, ["--set", "train.precision=fp16"])]:
        args = SMALL + ["--set", f"ps.servers={s}", "--set", f"ps.scheduler={str(sched).lower()}"] + extra
        label = f"S={s} W={w}{' +scheduler' if sched else ''} {' '.join(extra[1::2])}"
        tag = f"{s}_{w}_{sched}_{'_'.join(extra[1::2]).replace('=', '-')}"
        a, b = path(f"ps_{tag}.h5"), path(f"dp_{tag}.h5")
        run(s + w + sched, ps, args + ["--dump-state", a], label=label)
        # bf16: the servers sum the workers' 16-bit gradients widened to fp32 and update fp32 master weights, as
        # partrain-dp with its gradients reduced in fp32 (a sum of two is the same in either order)
        wide = ["--set", "dp.grad_reduce_dtype=fp32"] if any(a.startswith("train.precision=") for a in extra) else []
        subprocess.run([mpiexec, "-n", str(w), dp, "-i", dp_deck(args), "--dump-state", b] + wide, check=True,
                       capture_output=True)
        dumps_equal(a, b, 0.0 if w <= 2 else 1e-5, f"bsp {label} vs partrain-dp -n {w}")
    # fp16 with a loss scale that overflows: every shard skips its update and backs off until the gradients are finite
    out = path("fp16_overflow.h5")
    run(4, ps, SMALL + ["--set", "ps.servers=2", "--set", "train.precision=fp16", "--set",
                        "train.loss_scale.initial=1099511627776", "--output", out], label="fp16 overflow")
    with h5py.File(out) as f:
        s = f["summary"].attrs
        check(s["skipped_steps"] >= 2 and s["final_loss_scale"] < 2.0 ** 40 and np.all(np.isfinite(f["steps/loss"][()])),
              f"fp16 from a scale of 2^40: {s['skipped_steps']} shard updates skipped, final scale {s['final_loss_scale']}")

elif case == "result":
    gpt = ["--set", "model.kind=gpt", "--set", "model.gpt.layers=2", "--set", "model.gpt.seq_len=16",
           "--set", "model.gpt.channels=64", "--set", "model.gpt.vocab=64", "--set", "train.batch=8",
           "--set", "train.steps=32", "--set", "train.warmup=1", "--set", "train.lr=3e-3",
           "--set", "train.optimizer=adamw"]
    mlp = SMALL[:-4] + ["--set", "train.steps=16", "--set", "train.warmup=1", "--set", "train.optimizer=sgd",
                        "--set", "train.lr=0.2", "--set", "train.momentum=0.5"]
    for task, base in [("mlp", mlp), ("gpt", gpt)]:
        for mode, extra, W in [("bsp", [], 2), ("asp", [], 2), ("ssp", ["--set", "ps.staleness=1"], 3),
                               ("half_sync", ["--set", "ps.jitter_ms=3"], 2), ("local", ["--set", "ps.local_steps=2"], 2)]:
            out = path(f"{task}_{mode}.h5")
            S = 2 if mode == "asp" else 1
            r = run(S + W, ps, base + ["--set", f"ps.mode={mode}", "--set", f"ps.servers={S}", "--output", out] + extra,
                    label=f"{task} {mode}")
            if r.returncode != 0:
                continue
            with h5py.File(out) as f:
                for p in check_training_result(f, "partrain-ps", "ps", S + W):
                    check(False, f"{task} {mode}: {p}")
                a, s = f.attrs, f["summary"].attrs
                check(a["variant"] == mode and a["ps_mode"] == mode, f"{task} {mode}: variant attribute")
                steps = 32 if task == "gpt" else 16
                want = {"bsp": steps, "half_sync": steps, "local": steps // 2}.get(mode, W * steps)
                check(s["updates_applied"] == want, f"{task} {mode}: {s['updates_applied']} updates, wanted {want}")
                hist = f["ps/staleness_histogram"][()]
                check(hist.sum() == want * S, f"{task} {mode}: staleness histogram holds {hist.sum()} shard updates, "
                      f"not {want} on each of {S} shards")
                synchronous = mode in ("bsp", "half_sync", "local")
                if synchronous:
                    check(len(hist) == 1, f"{task} {mode}: synchronous updates with staleness > 0")
                check(np.all(f["ps/shard_updates"][()] == want), f"{task} {mode}: a shard missed updates")
                check(f["ps/worker_minibatches"][()].sum() == W * steps, f"{task} {mode}: mini-batches computed "
                      f"{f['ps/worker_minibatches'][()]} (every step's slices once)")
                check(f["ps/worker_samples"][()].sum() == steps * int(f.attrs["config_toml"].split("batch = ")[1].split()[0]),
                      f"{task} {mode}: samples applied {f['ps/worker_samples'][()].sum()}")
                loss = f["steps/loss"][()]
                t = f["ps/loss_wall_time_s"][()]
                check(len(loss) == steps and np.all(np.isfinite(loss)), f"{task} {mode}: losses")
                check(np.all(t > 0), f"{task} {mode}: loss wall times")
                threshold = 0.75 if task == "mlp" else 0.85  # the last 4 steps' mean against the first 4's
                if synchronous:  # the same run every time: it learns or it does not
                    check(loss[-4:].mean() < threshold * loss[:4].mean(),
                          f"{task} {mode}: loss {loss[:4].mean():.3f} -> {loss[-4:].mean():.3f}, not below {threshold} of it")
                else:  # which worker takes which mini-batch is arrival order's: reported, not asserted
                    print(f"{task} {mode}: loss {loss[:4].mean():.3f} -> {loss[-4:].mean():.3f}")
                check(s["samples_per_s"] > 0 and s["updates_per_s"] > 0, f"{task} {mode}: rates")

    # The plot of what the update rule does (tools/analysis/plot_ps.py) from every MLP run.
    png = path("ps.png")
    plot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "analysis", "plot_ps.py")
    r = subprocess.run([sys.executable, plot] + [path(f"mlp_{m}.h5") for m in ("bsp", "asp", "ssp", "half_sync", "local")]
                       + ["--out", png], capture_output=True, text=True)
    check(r.returncode == 0 and os.path.getsize(png) > 10000, f"plot_ps.py: {r.stderr}")

elif case == "ssp":
    # What every arrival order guarantees (the rules themselves are unit tests: tests/unit/test_ps_rules.cpp). Which
    # worker takes which mini-batch, and so the losses, depend on arrival order in asp and ssp; nothing below does.
    f64 = SMALL + ["--set", "model.dtype=fp64", "--set", "train.optimizer=sgd", "--set", "train.lr=0.1",
                   "--set", "train.steps=10"]
    W, steps = 2, 10
    run(3, ps, f64 + ["--set", "ps.mode=ssp", "--output", path("ssp0.h5")], label="ssp s=0")
    # s = 0: no worker starts clock c before every worker pushed clock c - 1: a clock gap of 0, and an update is never
    # staler than the other worker's one push of the same clock (the histogram's support is {0, 1})
    with h5py.File(path("ssp0.h5")) as f:
        s = f["summary"].attrs
        check(s["max_clock_gap"] == 0, f"ssp s=0: clock gap {s['max_clock_gap']}")
        check(len(f["ps/staleness_histogram"][()]) <= W, f"ssp s=0: staleness above {W - 1}: {f['ps/staleness_histogram'][()]}")
        check(s["updates_applied"] == W * steps and np.all(np.isfinite(f["steps/loss"][()])), "ssp s=0: updates, losses")
    # one worker: the order is forced, and ssp (any s) and asp are bsp bit for bit
    run(2, ps, f64 + ["--output", path("bspw1.h5")], label="bsp, one worker")
    for mode, extra in [("ssp", []), ("ssp", ["--set", "ps.staleness=3"]), ("asp", [])]:
        out = path(f"{mode}{len(extra)}w1.h5")
        run(2, ps, f64 + ["--set", f"ps.mode={mode}", "--output", out] + extra, label=f"{mode} one worker")
        check(np.array_equal(losses(out), losses(path("bspw1.h5"))), f"{mode} {' '.join(extra[1::2])} with one worker is not bsp")
    # a bound no run can reach (s = W x steps: a worker cannot be that many clocks ahead) never holds a pull
    run(3, ps, f64 + ["--set", "ps.mode=ssp", "--set", f"ps.staleness={W * steps}", "--output", path("sspbig.h5")],
        label="ssp s = W x steps")
    with h5py.File(path("sspbig.h5")) as f:
        check(f["summary"].attrs["bound_waits"] == 0, f"ssp s={W * steps}: a pull was held by the bound")
    # a straggler (worker 2 sleeps 40 ms before every push): ssp s=1 keeps the clock gap within 1 whatever the
    # scheduling; asp lets the other run ahead (how far is timing's: reported, not asserted)
    slow = ["--set", "ps.straggler=2:40", "--set", "train.steps=12"]
    run(3, ps, f64 + slow + ["--set", "ps.mode=ssp", "--set", "ps.staleness=1", "--output", path("sspslow.h5")],
        label="ssp s=1 straggler")
    run(3, ps, f64 + slow + ["--set", "ps.mode=asp", "--output", path("aspslow.h5")], label="asp straggler")
    with h5py.File(path("sspslow.h5")) as f:
        s = f["summary"].attrs
        check(s["max_clock_gap"] <= 1, f"ssp s=1: clock gap {s['max_clock_gap']} above the bound")
        print(f"ssp s=1 with a straggler: {s['bound_waits']:.0f} pulls held by the bound, mini-batches "
              f"{f['ps/worker_minibatches'][()]}")
    with h5py.File(path("aspslow.h5")) as f:
        mb = f["ps/worker_minibatches"][()]
        check(mb.sum() == W * 12 and f["summary"].attrs["updates_applied"] == W * 12, f"asp straggler: mini-batches {mb}")
        print(f"asp with a straggler: mini-batches {mb}, clock gap {f['summary'].attrs['max_clock_gap']:.0f}")
    # The delayed buffer (D = 2): a push carries at most D + 1 mini-batches, so there are never fewer than a third of
    # the mini-batches' pushes, never more than one per mini-batch, and no sample is lost.
    # (How many mini-batches the straggler holds back is timing's: its tickets are taken first come, first served.)
    run(4, ps, SMALL + ["--set", "train.steps=20", "--set", "ps.mode=asp", "--set", "ps.delay_buffer=2",
                        "--set", "ps.straggler=3:40", "--output", path("delay.h5")], label="asp straggler, delayed buffer")
    with h5py.File(path("delay.h5")) as f:
        s = f["summary"].attrs
        mb = f["ps/worker_minibatches"][()]
        check(mb.sum() / 3 <= s["updates_applied"] <= mb.sum(),
              f"delayed buffer: {s['updates_applied']} updates for {mb.sum()} mini-batches {mb}")
        check(f["ps/worker_samples"][()].sum() == 24 * 20, "delayed buffer: a mini-batch's samples were lost")
        print(f"delayed buffer: {s['delayed_holds']:.0f} mini-batches held back, {s['updates_applied']:.0f} updates "
              f"for {mb.sum()} mini-batches")

elif case == "restart":
    ck = path("ck")
    base = SMALL + ["--set", "ps.servers=2", "--set", "train.steps=10", "--set", "ps.checkpoint_every=2",
                    "--set", f"ps.checkpoint_dir={ck}"]
    run(4, ps, SMALL + ["--set", "ps.servers=2", "--set", "train.steps=10", "--dump-state", path("ref.h5")],
        label="uninterrupted")
    r = run(4, ps, base + ["--inject", "kill:rank=3:step=7"], expect_rc=None, label="killed")
    check(r.returncode != 0, "the killed job exited 0")
    def ckpts(d):  # finished checkpoints, oldest first (a write the kill interrupted leaves a .tmp-<pid>)
        return sorted((n for n in os.listdir(d) if n.endswith(".h5")), key=lambda n: int(n[5:-3]))
    files = ckpts(ck)
    check(files and all(n.startswith("ckpt-") and int(n[5:-3]) <= 6 for n in files),
          f"checkpoints after a kill at clock 7: {files}")
    run(4, ps, base + ["--resume", "--dump-state", path("resumed.h5"), "--output", path("resumed_result.h5")],
        label="resumed")
    dumps_equal(path("resumed.h5"), path("ref.h5"), 0.0, "resumed after kill -9 vs uninterrupted")
    ev, text = events(path("resumed_result.h5"))
    check(5 in ev[:, 1] and files[-1] in text, f"resume event: {text}")
    # A run without --resume does not overwrite them; another model's run refuses them.
    r = run(4, ps, base, expect_rc=2, label="checkpoints of an earlier run")
    check("holds checkpoints of an earlier run" in r.stderr + r.stdout, "earlier checkpoints not refused")
    r = run(4, ps, base + ["--resume", "--set", "model.mlp.widths=[64,32,10]"], expect_rc=2, label="another model")
    check("is a checkpoint of mlp(64-64-64-10), this run trains mlp(64-32-10)" in r.stderr + r.stdout,
          f"another model's checkpoint not refused: {r.stderr}")
    # A corrupt newest checkpoint is reported and skipped.
    ck2 = path("ck2")
    base2 = [a.replace(ck, ck2) for a in base]
    run(4, ps, base2 + ["--inject", "kill:rank=2:step=7"], expect_rc=None, label="killed again")
    files = ckpts(ck2)
    # checkpoint_keep = 2: the servers write a checkpoint, then remove the oldest, while the workers go on — a kill
    # between the two leaves one more (the finished run below must hold exactly 2)
    check(len(files) in (2, 3), f"checkpoint_keep = 2 but {files}")
    newest = os.path.join(ck2, files[-1])
    with open(newest, "r+b") as f:
        f.seek(os.path.getsize(newest) // 2)
        f.write(b"\0" * 4096)
    r = run(4, ps, base2 + ["--resume", "--dump-state", path("resumed2.h5")], label="resumed past a corrupt file")
    check("skipped" in r.stdout and files[-1] in r.stdout and f"resume: {os.path.join(ck2, files[-2])}" in r.stdout,
          f"corrupt checkpoint not reported:\n{r.stdout[:3000]}")
    dumps_equal(path("resumed2.h5"), path("ref.h5"), 0.0, "resumed from the older checkpoint vs uninterrupted")
    check(len(ckpts(ck2)) == 2, f"checkpoint_keep = 2 after a finished run, but {ckpts(ck2)}")
    # Asynchronous modes resume too (not bit for bit: the update order depends on timing).
    ck3 = path("ck3")
    base3 = [a.replace(ck, ck3) for a in base] + ["--set", "ps.mode=asp"]
    r = run(4, ps, base3 + ["--inject", "kill:rank=3:step=3"], expect_rc=None, label="asp killed")
    check(r.returncode != 0, "asp: the kill did not stop the job")
    run(4, ps, base3 + ["--resume"], label="asp resumed")

elif case == "membership":
    f64 = SMALL + ["--set", "model.dtype=fp64", "--set", "train.steps=10"] + FAST
    run(4, ps, f64 + ["--output", path("ok.h5")], label="unfailed")
    r = run(4, ps, f64 + ["--inject", "stall:rank=2:step=4", "--output", path("stall.h5")], label="worker stall")
    check("worker removed" in r.stdout, "no removal reported")
    a, b = losses(path("ok.h5")), losses(path("stall.h5"))
    check(np.allclose(a, b, rtol=1e-9, atol=0), f"losses after the removal differ: {np.max(np.abs(a - b) / a)}")
    ev, text = events(path("stall.h5"))
    check(any((ev[:, 1] == 1) & (ev[:, 2] == 2) & (ev[:, 3] == 4)), f"no removal of rank 2 at clock 4 in /ps/events: {ev}")
    with h5py.File(path("stall.h5")) as f:
        smp = f["ps/worker_samples"][()]
        check(smp.sum() == 24 * 10 and smp[1] == 4 * 8, f"samples per worker {smp}: wanted 240 in all, 32 by rank 2")
        check(f["summary"].attrs["workers_removed"] == 1, "workers_removed")
    r = run(4, ps, f64 + ["--set", "ps.mode=asp", "--inject", "stall:rank=3:step=0"], label="asp worker stall")
    check("worker removed" in r.stdout, "asp: no removal reported")

elif case == "join":
    # A planned join (--inject join) at clock 3 equals the run that had the same workers from clock 3 on: 2 workers
    # checkpointed at clock 3, resumed with 3 — bit for bit (the same slices, the same sums); with 1 and 2 servers.
    base = SMALL + ["--set", "train.steps=8"]
    for servers in (1, 2):
        s = ["--set", f"ps.servers={servers}"]
        n = servers + 2
        run(n + 1, ps, base + s + ["--set", "ps.spares=1", "--inject", f"join:rank={n}:step=3", "--dump-state",
                                   path(f"join{servers}.h5"), "--output", path(f"join{servers}_result.h5")],
            label=f"{servers} server(s), spare {n} joins at clock 3")
        ck = path(f"ck{servers}")
        run(n, ps, SMALL + s + ["--set", "train.steps=4", "--checkpoint-dir", ck, "--checkpoint-every", "3"],
            label="2 workers to clock 3")
        run(n + 1, ps, base + s + ["--checkpoint-dir", ck, "--resume", "--dump-state", path(f"resumed{servers}.h5")],
            label="resumed with 3 workers at clock 3")
        dumps_equal(path(f"join{servers}.h5"), path(f"resumed{servers}.h5"), 0.0,
                    f"join at clock 3 vs 3 workers from clock 3 ({servers} server(s))")
        ev, _ = events(path(f"join{servers}_result.h5"))
        check(any((ev[:, 1] == 7) & (ev[:, 2] == n) & (ev[:, 3] == 3)), f"no join of rank {n} at clock 3: {ev}")
        with h5py.File(path(f"join{servers}_result.h5")) as f:
            smp = f["ps/worker_samples"][()]
            check(smp.sum() == 24 * 8 and smp[2] == 5 * 8, f"samples per worker {smp}: 192 in all, 40 by the spare")
            check(f["summary"].attrs["workers_joined"] == 1, "workers_joined")
    # Leave, then join: worker 2 stalls at clock 2 and is removed; the spare announced itself and is admitted in its
    # place from the clock after the servers' furthest — the global batch every step: the fp64 dump equals the
    # unfailed run's within 1e-9 (the split of a clock is over 2 workers either way).
    f64 = SMALL + ["--set", "model.dtype=fp64", "--set", "train.steps=10"] + FAST
    run(3, ps, f64 + ["--dump-state", path("ok64.h5")], label="unfailed, 2 workers")
    r = run(4, ps, f64 + ["--set", "ps.spares=1", "--inject", "stall:rank=2:step=2", "--dump-state", path("lj.h5"),
                          "--output", path("lj_result.h5")], label="worker 2 stalls, spare 3 replaces it")
    check("worker removed" in r.stdout and "worker joined" in r.stdout, "no removal or join reported")
    dumps_equal(path("lj.h5"), path("ok64.h5"), 1e-9, "leave then join vs unfailed")
    ev, _ = events(path("lj_result.h5"))
    rem = ev[(ev[:, 1] == 1) & (ev[:, 2] == 2)]
    joi = ev[(ev[:, 1] == 7) & (ev[:, 2] == 3)]
    check(len(rem) == 1 and len(joi) == 1 and joi[0, 3] > rem[0, 3], f"removal then join in /ps/events: {ev}")
    with h5py.File(path("lj_result.h5")) as f:
        check(f["ps/worker_samples"][()].sum() == 24 * 10, "every sample of every step applied once")
    # Joining servers: shards 2 and 3 (the key space cut in 4, shards 2 and 3 first on servers 0 and 1) move to
    # spares 4 and 5 at clocks 2 and 5 — values, AdamW's moments and step count, fp16's loss scaler (growing every 2
    # steps) — and the queued pulls and pushes go on there: bit for bit the run of 4 servers holding the same 4 shards
    # from the start (fp16 skips an overflowing update shard by shard: the shards must be the same). fp16 moves all of
    # a shard's state there is: fp32 master weights, their 16-bit copy, the moments, the step count and the scaler.
    adam = SMALL + ["--set", "train.steps=8", "--set", "ps.servers=2", "--set", "train.optimizer=adamw"]
    for prec in ("fp16",):
        p = adam + ["--set", f"train.precision={prec}", "--set", "train.loss_scale.growth_interval=2"] if prec == "fp16" \
            else adam
        run(6, ps, p + ["--set", "ps.servers=4", "--dump-state", path(f"four_{prec}.h5")], label=f"4 servers ({prec})")
        run(6, ps, p + ["--set", "ps.spares=2", "--inject", "join:rank=4:step=2:shard=2", "--inject",
                        "join:rank=5:step=5:shard=3", "--dump-state", path(f"sj_{prec}.h5"), "--output",
                        path(f"sj_{prec}_result.h5")], label=f"2 servers join ({prec})")
        dumps_equal(path(f"sj_{prec}.h5"), path(f"four_{prec}.h5"), 0.0, f"servers joined at clocks 2 and 5 ({prec})")
        ev, _ = events(path(f"sj_{prec}_result.h5"))
        check(sorted(ev[ev[:, 1] == 8][:, 2:].tolist()) == [[4, 2], [5, 5]], f"server joins in /ps/events: {ev}")
    # A spare the run never needs idles and leaves with the others.
    r = run(4, ps, SMALL + ["--set", "ps.spares=1", "--output", path("idle.h5")], label="an idle spare")
    with h5py.File(path("idle.h5")) as f:
        check(f["summary"].attrs["workers_joined"] == 0 and f["ps/worker_minibatches"][()][2] == 0, "the spare idled")

elif case == "backup":
    base = SMALL + ["--set", "ps.servers=2", "--set", "ps.backup=true", "--set", "train.steps=10"] + FAST
    run(4, ps, base + ["--dump-state", path("ok.h5")], label="unfailed with backups")
    r = run(4, ps, base + ["--inject", "stall:rank=1:step=4", "--dump-state", path("stall.h5"),
                           "--output", path("stall_result.h5")], label="server 1 stalls")
    check("backup promoted" in r.stdout, "no promotion reported")
    dumps_equal(path("stall.h5"), path("ok.h5"), 0.0, "server 1 lost, backup promoted, vs unfailed")
    ev, _ = events(path("stall_result.h5"))
    check(any(ev[:, 1] == 2), "no promotion in /ps/events")
    r = run(3 + 1, ps, SMALL + ["--set", "ps.servers=2", "--set", "train.steps=6"] + FAST +
            ["--inject", "stall:rank=1:step=3"], expect_rc=None, label="server stall without backup")
    check(r.returncode != 0 and "no live backup" in (r.stdout + r.stderr),
          f"a lost server without backup must stop the run (exit code {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")

elif case == "takeover":
    base = SMALL + ["--set", "ps.servers=2", "--set", "ps.backup=true", "--set", "train.steps=10"] + FAST
    run(4, ps, base + ["--dump-state", path("ok.h5")], label="unfailed")
    r = run(4, ps, base + ["--inject", "stall:rank=0:step=4", "--dump-state", path("s0.h5"), "--output",
                           path("s0_result.h5")], label="server 0 (coordinator) stalls")
    dumps_equal(path("s0.h5"), path("ok.h5"), 0.0, "coordinator and primary lost vs unfailed")
    ev, _ = events(path("s0_result.h5"))
    check(any(ev[:, 1] == 3) and any(ev[:, 1] == 2), f"takeover and promotion events: {ev}")
    sched = base + ["--set", "ps.scheduler=true"]
    run(5, ps, sched + ["--dump-state", path("sok.h5")], label="with scheduler")
    r = run(5, ps, sched + ["--inject", "stall:rank=2:step=3", "--dump-state", path("sch.h5")], label="scheduler stalls")
    check("coordinator takeover" in r.stdout, "no takeover reported")
    dumps_equal(path("sch.h5"), path("sok.h5"), 0.0, "scheduler lost vs unfailed")
else:
    sys.exit(f"unknown case {case}")

print("ok" if not bad else f"{len(bad)} failed")
sys.exit(1 if bad else 0)
