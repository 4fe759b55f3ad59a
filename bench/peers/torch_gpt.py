#!/usr/bin/env python3
"""The PyTorch twin of Sharpformer's GPT for speed comparisons: same shapes, init, AdamW, clipping, batch.

nanoGPT-style and eager (torch 1.13 from Debian has no flash attention, so attention is the masked-softmax
form nanoGPT uses there). Prints the same figures as `sharpformer bench`; --json prints one object.
Run with OMP_NUM_THREADS=2, and OPENBLAS_CORETYPE=SkylakeX on an AVX-512 CPU (bench/compare.sh sets them).
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import twin

PRESETS = {
    "shakespeare-char-baby": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout=0.0, beta2=0.99),
    "shakespeare-char": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2, beta2=0.99),
}


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        C = c["n_embd"]
        self.n_head, self.dropout = c["n_head"], c["dropout"]
        self.ln_1 = nn.LayerNorm(C, elementwise_affine=True)
        self.ln_1.bias = None
        self.c_attn = nn.Linear(C, 3 * C, bias=False)
        self.c_proj = nn.Linear(C, C, bias=False)
        self.ln_2 = nn.LayerNorm(C)
        self.ln_2.bias = None
        self.c_fc = nn.Linear(C, 4 * C, bias=False)
        self.mlp_proj = nn.Linear(4 * C, C, bias=False)
        T = c["block_size"]
        self.register_buffer("mask", torch.tril(torch.ones(T, T)).view(1, 1, T, T))

    def attn(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        att = F.dropout(F.softmax(att, dim=-1), self.dropout, self.training)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return F.dropout(self.c_proj(y), self.dropout, self.training)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + F.dropout(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)))), self.dropout, self.training)


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.wte = nn.Embedding(c["vocab_size"], c["n_embd"])
        self.wpe = nn.Embedding(c["block_size"], c["n_embd"])
        self.h = nn.ModuleList(Block(c) for _ in range(c["n_layer"]))
        self.ln_f = nn.LayerNorm(c["n_embd"])
        self.ln_f.bias = None
        self.apply(self._init)
        for n, p in self.named_parameters():
            if n.endswith("c_proj.weight") or n.endswith("mlp_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c["n_layer"]))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        x = F.dropout(self.wte(idx) + self.wpe(torch.arange(T)), self.c["dropout"], self.training)
        for b in self.h:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss


def main():
    ap = twin.options(PRESETS, "shakespeare-char-baby")
    ap.add_argument("--sample-tokens", type=int, default=500)
    ap.add_argument("--train-iters", type=int, help="instead of timing: train this many iterations with nanoGPT's "
                    "schedule (warm-up 100, cosine to 1e-4) on --data and print the val loss (a quality reference)")
    ap.add_argument("--eval-iters", type=int, default=20)
    ap.add_argument("--sweep", metavar="LENGTHS", help="instead of timing the preset: for each context length T (comma-separated), "
                    "a training step of one sequence and the materialised attention's fwd+bwd, timed, and the step's peak memory "
                    "measured in a child process; prints one JSON list (the points of `sharpformer bench --sweep block-size`)")
    ap.add_argument("--sweep-point", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.sweep or a.sweep_point:
        return sweep(a)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    c = dict(PRESETS[a.preset], vocab_size=65)
    data = np.memmap(os.path.join(a.data, "train.bin"), dtype=np.uint16, mode="r") if a.data else np.random.randint(0, 65, 1 << 20).astype(np.uint16)
    B, T = c["batch_size"], c["block_size"]

    def batch(data=data):
        ix = torch.randint(len(data) - T, (B,))
        x = torch.stack([torch.from_numpy(data[i:i + T].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + T].astype(np.int64)) for i in ix])
        return x, y

    model = GPT(c)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, c["beta2"]))

    def step():
        x, y = batch()
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    if a.train_iters:
        return train_to_val(a, model, opt, batch, step)

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = (time.perf_counter() - t0) / a.steps

    n_params = sum(p.numel() for p in model.parameters()) - model.wpe.weight.numel()
    L, H, Q = c["n_layer"], c["n_head"], c["n_embd"] // c["n_head"]
    flops_per_token = 6 * n_params + 12 * L * H * Q * T
    tokens_per_s = B * T / dt

    model.eval()
    idx = torch.zeros((1, 1), dtype=torch.long)
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(a.sample_tokens):
            logits, _ = model(idx[:, -T:])
            probs = F.softmax(logits[:, -1, :] / 0.8, dim=-1)
            idx = torch.cat((idx, torch.multinomial(probs, 1)), dim=1)
        sample_rate = a.sample_tokens / (time.perf_counter() - t0)

    twin.report(a.json, tokens_per_s, dt * 1000, flops_per_token * tokens_per_s / 1e9, sample_tokens_per_s=sample_rate)


def sweep_model(a, T):
    """The preset's shape at context T, one sequence per step, no dropout, vocabulary 65 (as ContextSweep)."""
    torch.manual_seed(a.seed)
    c = dict(PRESETS[a.preset], vocab_size=65, block_size=T, batch_size=1, dropout=0.0)
    model = GPT(c)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, c["beta2"]))
    x = torch.randint(0, 65, (1, T))
    y = torch.randint(0, 65, (1, T))

    def step():
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return c, step


def best_ms(fn, repeats):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best


def status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def sweep_point_memory(a):
    """In a child started with glibc's mmap threshold fixed at 64 KB, so every large tensor is mapped when allocated
    and unmapped when freed: resident memory then follows the live tensors, and the peak resident set over a step
    (VmHWM, reset through /proc/self/clear_refs) less the resident set before it is what the step needs beyond the
    model, its gradients and AdamW's moments (all allocated by the first step)."""
    torch.set_num_threads(a.threads)
    _, step = sweep_model(a, a.sweep_point)
    step()
    baseline = status_bytes("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    for _ in range(2):
        step()
    print(json.dumps({"t": a.sweep_point, "step_peak_bytes": status_bytes("VmHWM") - baseline}))


def sweep(a):
    if a.sweep_point:
        return sweep_point_memory(a)
    import subprocess
    import sys
    torch.set_num_threads(a.threads)
    points = []
    for T in [int(t) for t in a.sweep.split(",")]:
        print(f"context {T}", file=sys.stderr, flush=True)
        c, step = sweep_model(a, T)
        L, H, Q = c["n_layer"], c["n_head"], c["n_embd"] // c["n_head"]
        q, k, v = (torch.randn(1, H, T, Q, requires_grad=True) for _ in range(3))
        mask = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
        d_out = torch.full((1, H, T, Q), 0.01)

        def attention():  # nanoGPT's non-flash path: the [T, T] scores and probabilities materialised, forward and backward
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(Q))
            att = F.softmax(att.masked_fill(mask[:, :, :T, :T] == 0, float("-inf")), dim=-1)
            (att @ v).backward(d_out)
        attention_ms = best_ms(attention, 3) * L  # every layer runs it once
        step_ms = best_ms(step, 3)
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
        child = subprocess.run([sys.executable, __file__, "--preset", a.preset, "--threads", str(a.threads), "--seed", str(a.seed),
                                "--sweep-point", str(T)], env=env, check=True, capture_output=True, text=True)
        memory = json.loads(child.stdout)["step_peak_bytes"]
        points.append({"t": T, "attention_ms": attention_ms, "step_ms": step_ms, "step_peak_bytes": memory,
                       "naive_attention_bytes": L * H * T * T * 4})
    if a.json:
        print(json.dumps(points))
    else:
        for p in points:
            print(f"T {p['t']:6}: attention fwd+bwd {p['attention_ms']:9.2f} ms, step {p['step_ms']:9.1f} ms, step memory {p['step_peak_bytes'] / 2**20:8.1f} MB")


def train_to_val(a, model, opt, batch, step):
    """nanoGPT's loop for the Shakespeare presets: lr warm-up over 100 iterations, cosine decay to 1e-4."""
    val = np.memmap(os.path.join(a.data, "val.bin"), dtype=np.uint16, mode="r")
    lr_max, lr_min, warm, n = 1e-3, 1e-4, 100, a.train_iters
    window = []
    for it in range(n):
        lr = lr_max * (it + 1) / (warm + 1) if it < warm else lr_min + 0.5 * (1 + math.cos(math.pi * (it - warm) / (n - warm))) * (lr_max - lr_min)
        for g in opt.param_groups:
            g["lr"] = lr
        window.append(step())
        if (it + 1) % 250 == 0:
            print(json.dumps({"iter": it + 1, "mean_train_loss_last_250": sum(window) / len(window)}), flush=True)
            window = []
    model.eval()
    with torch.no_grad():
        losses = [model(*batch(val))[1].item() for _ in range(a.eval_iters)]
    print(json.dumps({"iters": n, "seed": a.seed, "eval_iters": a.eval_iters, "val_loss": sum(losses) / len(losses)}))


if __name__ == "__main__":
    main()
