#!/usr/bin/python3
"""PyTorch DDP (gloo) peer of partrain-dp: the MLP 4×Linear(1024,1024)+ReLU, batch 64 per rank, fp32 SGD, one
thread per rank, N ranks on this machine (processes spawned here, rendezvous on 127.0.0.1). Times forward + loss
+ backward (with DDP's bucketed, overlapped allreduce) + optimizer step, after warm-up, with a barrier before
each step; prints the median over steps of the slowest rank.

    /usr/bin/python3 benchmarks/peer/torch_ddp.py [--ranks 2] [--steps 30] [--json]

Needs Debian's python3-torch (scripts/install-deps --peer), imported once the options are read.
"""
import json
import os
import statistics
import sys
import threading
import time

from peer_run import die_with_parent, free_port

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "analysis"))
from tool_io import fail, parser  # noqa: E402


def worker(rank, a, port, queue, parent):
    import torch  # here, not at the top: --help and bad options need no torch (as before, before the timer starts)
    import torch.distributed as dist
    import torch.nn as nn
    import torch.nn.functional as F

    die_with_parent()  # the spawning process gone (killed, timed out): this worker goes too
    if os.getppid() != parent:  # it went while this worker was still starting, before the line above armed it
        os._exit(1)
    # bounded: a worker still running after --timeout seconds is stuck (a peer gone, a rendezvous lost) and exits
    threading.Timer(a.timeout, lambda: os._exit(3)).start()
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=a.ranks)
    torch.manual_seed(0)
    W = 1024
    layers = []
    for i in range(4):
        layers.append(nn.Linear(W, W))
        if i < 3:
            layers.append(nn.ReLU())
    model = nn.parallel.DistributedDataParallel(nn.Sequential(*layers))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(a.batch, W)
    y = torch.randint(0, W, (a.batch,))
    times = []
    for s in range(a.warmup + a.steps):
        dist.barrier()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        t = time.perf_counter() - t0
        if s >= a.warmup:
            times.append(t)
    gathered = [None] * a.ranks
    dist.all_gather_object(gathered, times)
    if rank == 0:
        slowest = [max(ts[i] for ts in gathered) for i in range(len(times))]
        queue.put(statistics.median(slowest))
    dist.destroy_process_group()
    queue.close()
    queue.join_thread()  # the result is in the pipe before the worker goes
    os._exit(0)  # the timer thread must not keep the worker alive


def main():
    ap = parser(__doc__)
    ap.add_argument("--ranks", type=int, default=2, help="worker processes, on this machine (default: %(default)s)")
    ap.add_argument("--batch", type=int, default=64, help="samples per rank (default: %(default)s)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps before them (default: %(default)s)")
    ap.add_argument("--port", type=int, default=0, help="rendezvous port on 127.0.0.1 (default: a free one)")
    ap.add_argument("--timeout", type=float, default=300,
                    help="seconds after which a worker counts as hung and exits (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of a sentence")
    a = ap.parse_args()
    for name, value, least in [("--ranks", a.ranks, 1), ("--batch", a.batch, 1), ("--steps", a.steps, 1),
                               ("--warmup", a.warmup, 0), ("--port", a.port, 0)]:
        if value < least:
            fail(name, value, f"must be at least {least}")
    if a.port > 65535:
        fail("--port", a.port, "not a TCP port (at most 65535)")
    if not a.timeout > 0:
        fail("--timeout", a.timeout, "must be more than 0 seconds")
    try:
        import torch
        import torch.multiprocessing as mp
    except ImportError as e:
        fail("python3-torch", "(not importable)", f"{e} (scripts/install-deps --peer installs it)")
    port = a.port or free_port()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, a, port, queue, os.getpid())) for r in range(a.ranks)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + a.timeout + 30
    med = None
    while med is None:
        try:
            med = queue.get(timeout=1.0)
        except Exception:  # queue.Empty
            failed = [p for p in procs if p.exitcode not in (None, 0)]
            if failed or time.monotonic() > deadline or all(p.exitcode == 0 for p in procs):
                for p in procs:
                    if p.is_alive():
                        p.kill()
                why = (f"worker exit codes {[p.exitcode for p in procs]}" if failed or time.monotonic() <= deadline
                       else f"no result after {a.timeout + 30:.0f} s")
                sys.exit(f"torch_ddp.py: {a.ranks} ranks on port {port}: {why}")
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    out = {"peer": "pytorch-ddp-gloo", "torch": torch.__version__, "ranks": a.ranks, "step_time_median_ms": med * 1e3,
           "samples_per_s": a.batch * a.ranks / med}
    print(json.dumps(out) if a.json else
          f"pytorch {torch.__version__} DDP gloo, {a.ranks} ranks: median {med*1e3:.2f} ms/step (slowest rank), "
          f"{a.batch * a.ranks / med:.1f} samples/s")


if __name__ == "__main__":
    main()
