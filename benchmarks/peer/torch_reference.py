#!/usr/bin/python3
"""PyTorch peer of partrain's reference models, one process, one thread: time per training step.

Builds the same two models as partrain-ref (GPT-2 block exactly; MLP of Linear+ReLU) with the same shapes and
optimizers, runs warm-up steps, then times forward + loss + backward + optimizer step per step and prints the
median. Data is generated once outside the timed region (partrain also excludes data generation).

    /usr/bin/python3 benchmarks/peer/torch_reference.py --model gpt --steps 20
    /usr/bin/python3 benchmarks/peer/torch_reference.py --model mlp --steps 50
    /usr/bin/python3 benchmarks/peer/torch_reference.py --model gpt --precision bf16   # torch.autocast on the CPU
Run with Debian's python3-torch (/usr/bin/python3), OMP_NUM_THREADS=1. --precision bf16 is PyTorch's own mixed
precision (fp32 weights and optimizer, the forward under torch.autocast("cpu", dtype=torch.bfloat16)), the peer of
partrain's train.precision = bf16; PyTorch 1.13's CPU autocast has no fp16.
"""
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "analysis"))
from tool_io import fail, parser  # noqa: E402


def gpt(V, T, L, C, H):
    """The GPT-2 model of partrain-ref (torch imported here: --help needs none)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, C, H):
            super().__init__()
            self.H = H
            self.ln1 = nn.LayerNorm(C, eps=1e-5)
            self.qkv = nn.Linear(C, 3 * C)
            self.proj = nn.Linear(C, C)
            self.ln2 = nn.LayerNorm(C, eps=1e-5)
            self.fc = nn.Linear(C, 4 * C)
            self.mproj = nn.Linear(4 * C, C)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
            q = q.view(B, T, self.H, C // self.H).transpose(1, 2)
            k = k.view(B, T, self.H, C // self.H).transpose(1, 2)
            v = v.view(B, T, self.H, C // self.H).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
            att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
            x = x + self.proj(y)
            return x + self.mproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self, V, T, L, C, H):
            super().__init__()
            self.wte = nn.Embedding(V, C)
            self.wpe = nn.Embedding(T, C)
            self.blocks = nn.ModuleList(Block(C, H) for _ in range(L))
            self.ln_f = nn.LayerNorm(C, eps=1e-5)

        def forward(self, idx):
            T = idx.shape[1]
            x = self.wte(idx) + self.wpe(torch.arange(T))
            for b in self.blocks:
                x = b(x)
            return self.ln_f(x) @ self.wte.weight.t()

    return GPT(V, T, L, C, H)


def main():
    ap = parser(__doc__)
    ap.add_argument("--model", choices=["gpt", "mlp"], required=True,
                    help="gpt: L=4 C=256 H=4 T=128 V=512 B=8, AdamW; mlp: 4×Linear(1024,1024)+ReLU, B=64, SGD")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before them (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of a sentence")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="fp32, or bf16 under torch.autocast on the CPU (default: %(default)s)")
    a = ap.parse_args()
    if a.steps < 1:
        fail("--steps", a.steps, "must be at least 1")
    if a.warmup < 0:
        fail("--warmup", a.warmup, "must be at least 0")
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError as e:
        fail("python3-torch", "(not importable)", f"{e} (scripts/install-deps --peer installs it)")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if a.model == "gpt":
        V, T, L, C, H, B = 512, 128, 4, 256, 4, 8
        model = gpt(V, T, L, C, H)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
        x = torch.randint(0, V, (B, T))
        y = torch.randint(0, V, (B, T))
        loss_fn = lambda: F.cross_entropy(model(x).view(-1, V), y.view(-1))
        unit, per_step = "tokens", B * T
    else:
        B, W = 64, 1024
        layers = []
        for i in range(4):
            layers.append(nn.Linear(W, W))
            if i < 3:
                layers.append(nn.ReLU())
        model = nn.Sequential(*layers)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x = torch.randn(B, W)
        y = torch.randint(0, W, (B,))
        loss_fn = lambda: F.cross_entropy(model(x), y)
        unit, per_step = "samples", B
    times = []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = loss_fn()
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        if s >= a.warmup:
            times.append(t1 - t0)
    med = statistics.median(times)
    out = {"peer": "pytorch", "torch": torch.__version__, "model": a.model, "precision": a.precision,
           "threads": torch.get_num_threads(),
           "step_time_median_ms": med * 1e3, "step_time_min_ms": min(times) * 1e3,
           "step_time_max_ms": max(times) * 1e3, f"{unit}_per_s": per_step / med}
    if a.json:
        print(json.dumps(out))
    else:
        print(f"pytorch {torch.__version__} {a.model} {a.precision}: median {med*1e3:.2f} ms/step "
              f"(min {min(times)*1e3:.2f}, max {max(times)*1e3:.2f}), {per_step/med:.1f} {unit}/s")


if __name__ == "__main__":
    main()
