#!/usr/bin/python3
"""The NMT reference model (src/partrain/models/nmt.hpp) in PyTorch: --check DUMP compares a partrain --dump-state of
the NMT with it (the loss and every gradient), --time times one training step of the benchmark shape.

  --check DUMP   loads a partrain --dump-state of model.kind = "nmt" (parameters, batch, loss, gradients), rebuilds the
                 model from the parameters by name and shape, runs forward and backward on the dumped batch and
                 compares the loss and every gradient (exit 1 on a mismatch; tolerances from the dump's dtype)
  --time         times one training step (forward, loss, backward, AdamW) of the benchmark shape of
                 inputs/ref_nmt.toml, one thread, and prints the median (JSON with --json)

The model: bidirectional first encoder layer (H/2 per direction, the backward direction starting at each sentence's
last word), LSTM layers with residuals from index 2, a bottom decoder layer over the target embedding, scaled
dot-product attention over the real source positions, decoder layers over [d ; context], a generator, mean
cross-entropy over the real target tokens. torch.nn.LSTMCell has the same gate order (i, f, g, o).

    /usr/bin/python3 benchmarks/peer/torch_nmt.py --check nmt_dump.h5
    /usr/bin/python3 benchmarks/peer/torch_nmt.py --time [--steps 10] [--json]
Needs Debian's python3-torch (scripts/install-deps --peer) and python3-h5py.
"""
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "analysis"))
from tool_io import fail, open_h5, parser  # noqa: E402

torch = F = None  # imported by import_torch(), when there is work: --help and bad input need no torch
DUMP_DATA = ["params", "grads", "loss", "batch/inputs", "batch/decoder_inputs", "batch/targets", "batch/lengths"]


def import_torch():
    global torch, F
    if torch is None:
        try:
            import torch as torch_
            import torch.nn.functional as F_
        except ImportError as e:
            fail("python3-torch", "(not importable)", f"{e} (scripts/install-deps --peer installs it)")
        torch, F = torch_, F_


def lstm(p, prefix, x, lengths, reverse):
    """x: [S, B, I] → h [S, B, U]; a reverse layer keeps a zero state on each sentence's padding."""
    w_ih, w_hh, b_ih, b_hh = (p[f"{prefix}.{n}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    S, B, _ = x.shape
    U = w_hh.shape[1]
    h = x.new_zeros(B, U)
    c = x.new_zeros(B, U)
    out = [None] * S
    for t in (reversed(range(S)) if reverse else range(S)):
        g = x[t] @ w_ih.t() + b_ih + h @ w_hh.t() + b_hh
        i, f, gg, o = g.chunk(4, dim=1)
        i, f, gg, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(gg), torch.sigmoid(o)
        c = f * c + i * gg
        h = o * torch.tanh(c)
        if reverse:
            keep = (t < lengths).to(x.dtype).unsqueeze(1)
            h, c = h * keep, c * keep
        out[t] = h
    return torch.stack(out)


def forward(p, src, dec_in, tgt, lengths, enc_layers, dec_layers):
    """src, dec_in, tgt: [B, S] (tgt −1 at padding); returns the mean loss over real target tokens."""
    B, S = src.shape
    x = p["src_embed.weight"][src.t()]  # [S, B, E]
    e = torch.cat([lstm(p, "encoder.bi.fwd", x, lengths, False), lstm(p, "encoder.bi.bwd", x, lengths, True)], 2)
    for i in range(1, enc_layers):
        h = lstm(p, f"encoder.layers.{i}", e, lengths, False)
        e = h + e if i >= 2 else h
    y = p["tgt_embed.weight"][dec_in.t()]
    d = lstm(p, "decoder.layers.0", y, lengths, False)
    H = d.shape[2]
    scores = torch.einsum("tbh,sbh->bts", d, e) / math.sqrt(H)
    mask = torch.arange(S).view(1, 1, S) < lengths.view(B, 1, 1)
    a = scores.masked_fill(~mask, float("-inf")).softmax(dim=2)
    ctx = torch.einsum("bts,sbh->tbh", a, e)
    for i in range(1, dec_layers):
        h = lstm(p, f"decoder.layers.{i}", torch.cat([d, ctx], 2), lengths, False)
        d = h + d if i >= 2 else h
    logits = d @ p["generator.weight"].t() + p["generator.bias"]  # [S, B, V]
    t = tgt.t().reshape(-1)
    return F.cross_entropy(logits.reshape(S * B, -1), t, ignore_index=-1, reduction="sum") / (t >= 0).sum()


def layers_of(names):
    enc = 1 + max([int(n.split(".")[2]) for n in names if n.startswith("encoder.layers.")] or [0])
    dec = 1 + max(int(n.split(".")[2]) for n in names if n.startswith("decoder.layers."))
    return enc, dec


def open_dump(path):
    """path opened read-only as HDF5 and checked to be an NMT --dump-state; anything else is an error."""
    import tomllib
    f = open_h5("DUMP", path)
    missing = [k for k in ("params", "grads", "loss") if k not in f]
    if missing:
        f.close()
        fail("DUMP", path, f"not a partrain --dump-state file (no {missing[0]})")
    try:
        kind = tomllib.loads(f.attrs["config_toml"])["model"]["kind"] if "config_toml" in f.attrs else "nmt"
    except (tomllib.TOMLDecodeError, TypeError, KeyError) as e:
        f.close()
        fail("DUMP", path, f"not a partrain --dump-state file (its config_toml has no model.kind: {e})")
    if kind != "nmt":
        f.close()
        fail("DUMP", path, f"a dump of model.kind = {kind}, not of the NMT (torch_check.py checks it)")
    missing = [k for k in DUMP_DATA if k not in f]
    if missing or not any(n.startswith("decoder.layers.") for n in f["params"]):
        f.close()
        fail("DUMP", path, f"not a complete dump of the NMT (no {missing[0] if missing else 'params/decoder.layers.*'})")
    return f


def check(path):
    import numpy as np
    f = open_dump(path)
    import_torch()
    with f:
        dtype = torch.float64 if f["params"][list(f["params"])[0]].dtype == np.float64 else torch.float32
        p = {k: torch.tensor(f["params"][k][()], dtype=dtype, requires_grad=True) for k in f["params"]}
        ref_grads = {k: f["grads"][k][()] for k in f["grads"]}
        src = torch.tensor(f["batch/inputs"][()], dtype=torch.long)
        dec_in = torch.tensor(f["batch/decoder_inputs"][()], dtype=torch.long)
        tgt = torch.tensor(f["batch/targets"][()], dtype=torch.long)
        lengths = torch.tensor(f["batch/lengths"][()], dtype=torch.long)
        ref_loss = float(f["loss"][()])
    enc, dec = layers_of(p.keys())
    loss = forward(p, src, dec_in, tgt, lengths, enc, dec)
    loss.backward()
    tol_loss, tol_grad = (1e-12, 1e-9) if dtype == torch.float64 else (1e-5, 1e-4)
    bad = []
    if abs(loss.item() - ref_loss) > tol_loss * abs(ref_loss):
        bad.append(f"loss: PyTorch {loss.item():.10g}, partrain {ref_loss:.10g}")
    for k, g in ref_grads.items():
        ours = torch.tensor(g, dtype=dtype)
        theirs = p[k].grad
        err = (ours - theirs).norm().item() / max(theirs.norm().item(), 1e-30)
        if err > tol_grad:
            bad.append(f"grad {k}: relative error {err:.2e}")
    for b in bad:
        print("FAILED:", b)
    print(f"PyTorch loss {loss.item():.10g}, partrain {ref_loss:.10g}; {len(ref_grads)} gradients compared;",
          "ok" if not bad else f"{len(bad)} failed")
    return 1 if bad else 0


def time_step(steps, warmup, as_json):
    import_torch()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    V, E, H, Le, Ld, S, B = 8192, 256, 256, 4, 4, 24, 16  # inputs/ref_nmt.toml
    shapes = {"src_embed.weight": (V, E), "tgt_embed.weight": (V, E), "generator.weight": (V, H), "generator.bias": (V,)}
    for d in ("fwd", "bwd"):
        shapes.update({f"encoder.bi.{d}.weight_ih": (2 * H, E), f"encoder.bi.{d}.weight_hh": (2 * H, H // 2),
                       f"encoder.bi.{d}.bias_ih": (2 * H,), f"encoder.bi.{d}.bias_hh": (2 * H,)})
    for i in range(1, Le):
        shapes.update({f"encoder.layers.{i}.weight_ih": (4 * H, H), f"encoder.layers.{i}.weight_hh": (4 * H, H),
                       f"encoder.layers.{i}.bias_ih": (4 * H,), f"encoder.layers.{i}.bias_hh": (4 * H,)})
    for i in range(Ld):
        shapes.update({f"decoder.layers.{i}.weight_ih": (4 * H, E if i == 0 else 2 * H),
                       f"decoder.layers.{i}.weight_hh": (4 * H, H),
                       f"decoder.layers.{i}.bias_ih": (4 * H,), f"decoder.layers.{i}.bias_hh": (4 * H,)})
    p = {k: (torch.randn(*s) * 0.05).requires_grad_() for k, s in shapes.items()}
    opt = torch.optim.AdamW(p.values(), lr=1e-3, weight_decay=0.0)
    lengths = torch.randint(8, S + 1, (B,))
    src = torch.randint(2, V, (B, S)) * (torch.arange(S) < lengths.view(B, 1))
    tgt = torch.where(torch.arange(S) < lengths.view(B, 1), torch.randint(2, V, (B, S)), torch.full((B, S), -1))
    dec_in = torch.cat([torch.ones(B, 1, dtype=torch.long), tgt[:, :-1].clamp(min=0)], 1)
    times = []
    for k in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = forward(p, src, dec_in, tgt, lengths, Le, Ld)
        loss.backward()
        opt.step()
        if k >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    out = {"model": "nmt V=8192 E=H=256 Le=Ld=4 S=24 B=16", "step_time_median_ms": statistics.median(times),
           "torch": torch.__version__}
    print(json.dumps(out) if as_json else f"PyTorch {torch.__version__}: {out['step_time_median_ms']:.1f} ms per step")


def main():
    ap = parser(__doc__)
    ap.add_argument("--check", metavar="DUMP", help="compare a partrain --dump-state of model.kind = \"nmt\" with "
                                                    "PyTorch; exit 1 on a mismatch")
    ap.add_argument("--time", action="store_true", help="time one training step of inputs/ref_nmt.toml's shape")
    ap.add_argument("--steps", type=int, default=10, help="with --time: timed steps (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=2, help="with --time: untimed steps before them (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="with --time: print one JSON line instead of a sentence")
    a = ap.parse_args()
    if a.steps < 1:
        fail("--steps", a.steps, "must be at least 1")
    if a.warmup < 0:
        fail("--warmup", a.warmup, "must be at least 0")
    if a.check:
        sys.exit(check(a.check))
    if a.time:
        time_step(a.steps, a.warmup, a.json)
        return
    ap.error("give --check DUMP or --time")


if __name__ == "__main__":
    main()
