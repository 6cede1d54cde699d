#!/usr/bin/python3
"""Checks any partrain --dump-state file against PyTorch: rebuilds the dumped model (MLP, GPT with or without its
mixture of experts, the sparse MLP's embedding bags; the NMT through torch_nmt.py) from the dumped parameters by name, recomputes the loss and every gradient in float64 on the dumped
batch, and prints the worst relative error per tensor against DESIGN.md's tolerances — fp64 dumps 1e-12 (loss) and
1e-9 (gradients), fp32 dumps 1e-5 and 1e-4. Works on a dump of partrain-ref or of any mini-app (they gather whole
tensors under the reference's names), so it checks a run on any machine.

A mixed-precision dump (train.precision bf16 or fp16: fp32 master weights, gradients divided by the loss scale) is
checked against the exact (float64) loss and gradients of the model whose weights are the master weights rounded to
the 16-bit type, as partrain ran it, within sqrt(n)*u: u the type's unit roundoff (2^-8 bf16, 2^-11 fp16) and n the
number of 16-bit roundings on the longest forward-and-backward path (6 + 22 per GPT block, 1 + 4 per MLP layer) —
Higham and Mary's probabilistic bound (lambda = 1) for n independent roundings; the worst case gamma_n = n*u/(1 - n*u)
is printed beside it (docs/precision.md). PyTorch's own mixed precision (torch.autocast on the CPU, bf16 only in
PyTorch 1.13) is measured against the same exact values and printed beside it; with --fp32 DUMP the gradients are
also compared with partrain's fp32 dump of the same step (tolerance sqrt(n)*u + 1e-4).

    /usr/bin/python3 benchmarks/peer/torch_check.py dump.h5 [--all]     # exit 0 when every tensor is within tolerance
    /usr/bin/python3 benchmarks/peer/torch_check.py bf16.h5 --fp32 fp32.h5

Exit code 1 when a tensor is past its tolerance, 2 when the dump cannot be checked. Needs Debian's python3-torch
(scripts/install-deps --peer) and python3-h5py.
"""
import math
import os
import sys
import tomllib

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "analysis"))
from tool_io import fail, open_h5, parser  # noqa: E402

torch = F = None  # imported once the dump is known to be good (import_torch): --help and bad input need no torch


def import_torch():
    global torch, F
    try:
        import torch as torch_
        import torch.nn.functional as F_
    except ImportError as e:
        fail("python3-torch", "(not importable)", f"{e} (scripts/install-deps --peer installs it)")
    torch, F = torch_, F_
    torch.set_default_dtype(torch.float64)


def open_dump(path):
    """path opened read-only as HDF5; a missing, unreadable or foreign file is an error."""
    return open_h5("DUMP", path)


def layer_norm(x, p, name):
    return F.layer_norm(x, (x.shape[-1],), p[name + ".weight"], p[name + ".bias"], eps=1e-5)


def moe(x, p, b, m):
    """The mixture of experts (src/partrain/models/moe.hpp) on x = LN2's output [B, T, C]: y and mean_s aux_s."""
    B, T, C = x.shape
    E, k = m["experts"], m["top_k"]
    cap = math.ceil(m["capacity_factor"] * k * T / E - 1e-9)
    probs = F.linear(x, p[b + "moe.router.weight"]).softmax(-1)
    with torch.no_grad():  # the choices: the largest probabilities, ties to the lower expert
        e1 = probs.argmax(-1)
        choices = [e1]
        if k == 2:
            rest = probs.detach().clone()
            rest.scatter_(-1, e1.unsqueeze(-1), -1.0)
            choices.append(rest.argmax(-1))
    picked = [probs.gather(-1, c.unsqueeze(-1)).squeeze(-1) for c in choices]
    gates = picked if k == 1 else [q / (picked[0] + picked[1]) for q in picked]
    keep = [torch.zeros(B, T, dtype=torch.bool) for _ in range(k)]
    for s_ in range(B):  # per sequence: at most cap rows per expert, first choices first, in token order
        count = [0] * E
        for j in range(k):
            for t in range(T):
                e = int(choices[j][s_, t])
                if count[e] < cap:
                    keep[j][s_, t] = True
                    count[e] += 1
    y = torch.zeros_like(x)
    for j in range(k):
        for e in range(E):
            sel = keep[j] & (choices[j] == e)
            if not bool(sel.any()):
                continue
            n = f"{b}moe.experts.{e}."
            h = F.gelu(F.linear(x[sel], p[n + "fc.weight"], p[n + "fc.bias"]), approximate="tanh")
            out = torch.zeros_like(x)
            out[sel] = gates[j][sel].unsqueeze(-1) * F.linear(h, p[n + "proj.weight"], p[n + "proj.bias"])
            y = y + out
    frac = F.one_hot(e1, E).double().mean(1)  # first choices before the capacity, per sequence
    aux = m["aux_loss_coef"] * E * (frac * probs.mean(1)).sum(-1)
    return y, aux.mean()


def gpt_loss(p, inputs, targets, cfg):
    H = cfg["heads"]
    B, T = inputs.shape
    m = cfg.get("moe", {"every": 0})
    aux = 0.0
    x = p["wte"][inputs] + p["wpe"][:T]
    for i in range(cfg["layers"]):
        b = f"blocks.{i}."
        C = x.shape[-1]
        q, k, v = F.linear(layer_norm(x, p, b + "ln1"), p[b + "attn.qkv.weight"], p[b + "attn.qkv.bias"]).split(C, dim=2)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)
        att = att.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + F.linear(y, p[b + "attn.proj.weight"], p[b + "attn.proj.bias"])
        if m["every"] > 0 and i % m["every"] == m["every"] - 1:
            y, a = moe(layer_norm(x, p, b + "ln2"), p, b, m)
            x = x + y
            aux = aux + a
            continue
        h = F.gelu(F.linear(layer_norm(x, p, b + "ln2"), p[b + "mlp.fc.weight"], p[b + "mlp.fc.bias"]), approximate="tanh")
        x = x + F.linear(h, p[b + "mlp.proj.weight"], p[b + "mlp.proj.bias"])
    logits = layer_norm(x, p, "ln_f") @ p["wte"].t()
    return F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1).long()) + aux


def mlp_loss(p, inputs, targets, cfg):
    n = len(cfg["widths"]) - 1
    x = inputs
    for i in range(n):
        x = F.linear(x, p[f"layers.{i}.weight"], p[f"layers.{i}.bias"])
        if i < n - 1:
            x = F.relu(x) if cfg.get("activation", "relu") == "relu" else F.gelu(x, approximate="tanh")
    return F.cross_entropy(x, targets.long())


def sparse_mlp_loss(p, inputs, ids, targets, cfg):
    """The embedding-bag model: per table a sum-pooled bag (torch's EmbeddingBag, mode "sum"), the dense features
    after them, then Linear + ReLU layers and 2 classes."""
    n_t, bag = cfg["tables"], cfg["bag"]
    ids = ids.long().reshape(targets.shape[0], n_t, bag)
    parts = [F.embedding_bag(ids[:, t, :], p[f"emb.{t}.weight"], mode="sum") for t in range(n_t)]
    if cfg["dense"] > 0:
        parts.append(inputs)
    x = torch.cat(parts, dim=1)
    n = len(cfg["widths"]) + 1
    for i in range(n):
        x = F.linear(x, p[f"layers.{i}.weight"], p[f"layers.{i}.bias"])
        if i < n - 1:
            x = F.relu(x)
    return F.cross_entropy(x, targets.long())


def read_kind(path):
    """(config, model kind) of a --dump-state file; anything else is bad input (exit code 2)."""
    foreign = "not a partrain --dump-state file"
    with open_dump(path) as f:
        missing = [k for k in ("params", "grads", "loss", "batch/inputs", "batch/targets") if k not in f]
        if missing:
            fail("DUMP", path, f"{foreign} (no {missing[0]})")
        if "config_toml" not in f.attrs:
            fail("DUMP", path, f"{foreign} (no config_toml attribute)")
        try:
            cfg = tomllib.loads(f.attrs["config_toml"])
            kind = cfg["model"]["kind"]
        except (tomllib.TOMLDecodeError, TypeError, KeyError) as e:
            fail("DUMP", path, f"{foreign} (its config_toml has no model.kind: {e})")
        if kind not in ("gpt", "mlp", "nmt", "sparse_mlp"):
            fail("model.kind", kind, f"no PyTorch model for it (in {path})")
        if not len(f["params"]):
            fail("DUMP", path, f"{foreign} (no parameters under params)")
    return cfg, kind


def roundings(cfg, kind):
    """16-bit roundings on the longest forward-and-backward path of the model (the n of gamma_n)."""
    if kind == "gpt":
        return 6 + 22 * cfg["model"]["gpt"]["layers"]
    return 1 + 4 * (len(cfg["model"]["mlp"]["widths"]) - 1)


def model_loss(p, inputs, targets, cfg, kind, dtype):
    if kind == "gpt":
        return gpt_loss(p, inputs.long(), targets, cfg["model"]["gpt"])
    return mlp_loss(p, inputs.to(dtype), targets, cfg["model"]["mlp"])


def rel(a, b):
    return (a - b).norm().item() / max(b.norm().item(), 1e-30)


def check_half(path, cfg, kind, show_all, precision, fp32_dump):
    """A bf16/fp16 dump against the exact values of its rounded weights, beside torch.autocast's errors."""
    if kind == "sparse_mlp":
        fail("train.precision", precision, f"no mixed-precision PyTorch check for the sparse MLP (in {path})")
    half = torch.bfloat16 if precision == "bf16" else torch.float16
    u = 2.0 ** -8 if precision == "bf16" else 2.0 ** -11
    n = roundings(cfg, kind)
    gamma = n * u / (1 - n * u)  # the worst case, printed
    tol = math.sqrt(n) * u       # the check
    with open_dump(path) as f:
        master = {k: f["params"][k][()] for k in f["params"]}
        grads = {k: torch.tensor(f["grads"][k][()], dtype=torch.float64) for k in f["grads"]}
        inputs = torch.tensor(f["batch/inputs"][()])
        targets = torch.tensor(f["batch/targets"][()])
        ref_loss = float(f["loss"][()])
    # exact: float64 on the weights partrain computed with (the master weights rounded to the 16-bit type)
    p = {k: torch.tensor(v, dtype=torch.float32).to(half).to(torch.float64).requires_grad_() for k, v in master.items()}
    exact = model_loss(p, inputs, targets, cfg, kind, torch.float64)
    exact.backward()
    errs = {k: rel(g, p[k].grad) for k, g in grads.items()}
    loss_err = abs(ref_loss - exact.item()) / abs(exact.item())
    # PyTorch's mixed precision on the same step: fp32 weights (the master), autocast to bf16 on the CPU
    auto_note = "torch.autocast: CPU autocast has no fp16 in PyTorch 1.13"
    if precision == "bf16":
        q = {k: torch.tensor(v, dtype=torch.float32, requires_grad=True) for k, v in master.items()}
        with torch.autocast("cpu", dtype=torch.bfloat16):
            al = model_loss(q, inputs, targets, cfg, kind, torch.float32)
        al.float().backward()
        a_errs = {k: rel(q[k].grad.double(), p[k].grad) for k in q}
        aw = max(a_errs, key=a_errs.get)
        auto_note = (f"torch.autocast bf16 on the same step: loss {abs(al.item() - exact.item()) / abs(exact.item()):.1e}, "
                     f"worst gradient {aw} {a_errs[aw]:.1e}")
    worst = max(errs, key=errs.get)
    bad = [k for k, e in errs.items() if e > tol]
    if show_all:
        for k in sorted(errs):
            print(f"  {k:32s} {errs[k]:.2e}")
    ok = loss_err <= tol and not bad
    print(f"torch_check: {path}: {kind} ({precision}, n = {n} roundings: tolerance sqrt(n)u = {tol:.2g}, worst case "
          f"gamma_n = {gamma:.2g}), loss exact {exact.item():.10g} vs partrain {ref_loss:.10g} (relative "
          f"{loss_err:.1e}); {len(errs)} gradients, worst {worst} {errs[worst]:.1e}; {auto_note}: "
          f"{'ok' if ok else 'FAILED ' + ', '.join(bad)}")
    if fp32_dump:
        with open_dump(fp32_dump) as f:
            g32 = {k: torch.tensor(f["grads"][k][()], dtype=torch.float64) for k in f["grads"]}
        if set(g32) != set(grads) or any(g32[k].shape != grads[k].shape for k in grads):
            fail("--fp32", fp32_dump, f"is not a dump of the same model as {path}")
        d = {k: rel(grads[k], g32[k]) for k in grads}
        dw = max(d, key=d.get)
        ok32 = d[dw] <= tol + 1e-4
        print(f"torch_check: {path} vs partrain fp32 {fp32_dump}: worst gradient {dw} {d[dw]:.1e} (tolerance "
              f"{tol + 1e-4:.2g}): {'ok' if ok32 else 'FAILED'}")
        ok = ok and ok32
    return ok


def check(path, cfg, kind, show_all, fp32_dump=None):
    """One dump against PyTorch (torch imported): True when the loss and every gradient are within tolerance."""
    with open_dump(path) as f:
        precision = f.attrs.get("precision", "fp32")
    if precision in ("bf16", "fp16"):
        return check_half(path, cfg, kind, show_all, precision, fp32_dump)
    if kind == "nmt":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import torch_nmt
        return torch_nmt.check(path) == 0
    with open_dump(path) as f:
        fp64 = f["params"][list(f["params"])[0]].dtype == np.float64
        p = {k: torch.tensor(f["params"][k][()], dtype=torch.float64, requires_grad=True) for k in f["params"]}
        grads = {k: f["grads"][k][()] for k in f["grads"]}
        inputs = torch.tensor(f["batch/inputs"][()])
        ids = torch.tensor(f["batch/ids"][()]) if "batch/ids" in f else inputs
        targets = torch.tensor(f["batch/targets"][()])
        ref_loss = float(f["loss"][()])
    if kind == "gpt":
        loss = gpt_loss(p, inputs.long(), targets, cfg["model"]["gpt"])
    elif kind == "sparse_mlp":
        loss = sparse_mlp_loss(p, inputs.double(), ids, targets, cfg["model"]["sparse_mlp"])
    else:
        loss = mlp_loss(p, inputs.double(), targets, cfg["model"]["mlp"])
    loss.backward()
    tol_loss, tol_grad = (1e-12, 1e-9) if fp64 else (1e-5, 1e-4)
    errs = {}
    for k, g in grads.items():
        theirs = p[k].grad
        errs[k] = (torch.tensor(g, dtype=torch.float64) - theirs).norm().item() / max(theirs.norm().item(), 1e-30)
    loss_err = abs(loss.item() - ref_loss) / max(abs(loss.item()), 1e-30)
    worst = max(errs, key=errs.get)
    bad = [k for k, e in errs.items() if e > tol_grad]
    if show_all:
        for k in sorted(errs):
            print(f"  {k:32s} {errs[k]:.2e}")
    ok = loss_err <= tol_loss and not bad
    print(f"torch_check: {path}: {kind} ({'fp64' if fp64 else 'fp32'}), loss PyTorch {loss.item():.10g} vs "
          f"partrain {ref_loss:.10g} (relative {loss_err:.1e}, tolerance {tol_loss:g}); {len(errs)} gradients, worst "
          f"{worst} {errs[worst]:.1e} (tolerance {tol_grad:g}): {'ok' if ok else 'FAILED ' + ', '.join(bad)}")
    return ok


def main():
    ap = parser(__doc__)
    ap.add_argument("dumps", metavar="DUMP", nargs="+",
                    help="HDF5 files written by a partrain app's --dump-state (several: PyTorch is loaded once)")
    ap.add_argument("--all", action="store_true", help="print every tensor's error, not only the worst")
    ap.add_argument("--fp32", metavar="DUMP", help="partrain's fp32 dump of the same step, compared with bf16/fp16 dumps")
    a = ap.parse_args()
    kinds = [read_kind(path) for path in a.dumps]  # every file checked before PyTorch loads
    if a.fp32:
        read_kind(a.fp32)
    import_torch()
    results = [check(path, cfg, kind, a.all, a.fp32) for path, (cfg, kind) in zip(a.dumps, kinds)]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
