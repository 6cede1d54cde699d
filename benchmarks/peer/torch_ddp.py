#!/usr/bin/python3
"""PyTorch DDP (gloo) peer of partrain-dp: the MLP 4×Linear(1024,1024)+ReLU, batch 64 per rank, fp32 SGD, one
thread per rank, N ranks on this machine (processes spawned here, rendezvous on 127.0.0.1). Times forward + loss
+ backward (with DDP's bucketed, overlapped allreduce) + optimizer step, after warm-up, with a barrier before
each step; prints the median over steps of the slowest rank.

    /usr/bin/python3 benchmarks/peer/torch_ddp.py [--ranks 2] [--steps 30] [--json]
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

from peer_run import die_with_parent, free_port


def worker(rank, a, port, queue, parent):
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
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64, help="samples per rank")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--port", type=int, default=0, help="rendezvous port (default: a free one)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds after which a worker counts as hung")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
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
