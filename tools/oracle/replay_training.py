#!/usr/bin/env python3
"""Replays a Sharpformer training run in PyTorch and compares the losses step by step.

Rebuilds the run's initial weights (Sharpformer's GPT-2 init: a SplitMix64 stream through Box-Muller, in
parameter order) and its batch stream (xoshiro256** seeded with the run's seed, Lemire's unbiased bounded
integers), trains the PyTorch twin (bench/peers/torch_gpt.py) on exactly those inputs with nanoGPT's
schedule, and prints the twin's loss beside the one Sharpformer logged in OUT/metrics.jsonl. Equal losses
mean the two implementations compute the same training step; any quality difference then comes only from
the random draws.

  /usr/bin/python3 tools/oracle/replay_training.py --data data/shakespeare_char \
      --metrics out-shakespeare-char-baby/metrics.jsonl --iters 500
(the run must have used the shakespeare-char-baby preset and --log-interval 1, as that preset does)
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench", "peers"))
import torch_gpt  # noqa: E402

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def splitmix(state):
    state = (state + GOLDEN) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


class InitRng:
    """Sharpformer.Nn.InitRng: uniforms in (0, 1] from SplitMix64, normals by Box-Muller (cos, then the spare sin)."""
    def __init__(self, seed):
        self.state, self.spare = seed & M64, None

    def uniform(self):
        self.state, z = splitmix(self.state)
        return ((z >> 11) + 1) * (1.0 / (1 << 53))

    def normal(self):
        if self.spare is not None:
            s, self.spare = self.spare, None
            return s
        r, theta = math.sqrt(-2 * math.log(self.uniform())), 2 * math.pi * self.uniform()
        self.spare = r * math.sin(theta)
        return r * math.cos(theta)


class Xoshiro:
    """Sharpformer.Tensors.Rng: xoshiro256** seeded through SplitMix64; NextInt is Lemire's method."""
    def __init__(self, seed):
        self.s, state = [], seed & M64
        for _ in range(4):
            state, z = splitmix(state)
            self.s.append(z)

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45)
        return result

    def next_int(self, bound):
        while True:
            m = self.next() * bound
            low = m & M64
            if low >= bound or low >= ((1 << 64) - bound) % bound:
                return m >> 64


def sharpformer_init(model, c, seed):
    """Fills the twin's weights in Sharpformer's parameter order (wte, wpe, per block c_attn, c_proj, c_fc, mlp c_proj)."""
    rng = InitRng(seed)
    residual = 0.02 / math.sqrt(2 * c["n_layer"])

    def fill(t, std):
        flat = t.data.view(-1)
        for i in range(flat.numel()):
            flat[i] = float(np.float32(rng.normal() * std))
    with torch.no_grad():
        fill(model.wte.weight, 0.02)
        fill(model.wpe.weight, 0.02)
        for b in model.h:
            fill(b.c_attn.weight, 0.02)
            fill(b.c_proj.weight, residual)
            fill(b.c_fc.weight, 0.02)
            fill(b.mlp_proj.weight, residual)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--metrics", required=True, help="metrics.jsonl of the Sharpformer run")
    ap.add_argument("--preset", default="shakespeare-char-baby", choices=torch_gpt.PRESETS)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--max-iters", type=int, default=2000, help="the run's max-iters (sets the cosine schedule)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    c = dict(torch_gpt.PRESETS[a.preset], vocab_size=65)
    model = torch_gpt.GPT(c)
    sharpformer_init(model, c, a.seed)
    train = np.memmap(os.path.join(a.data, "train.bin"), dtype=np.uint16, mode="r")
    B, T = c["batch_size"], c["block_size"]
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, c["beta2"]))
    logged = {r["iter"]: r["loss"] for r in map(json.loads, open(a.metrics)) if "loss" in r}
    rng, worst = Xoshiro(a.seed), 0.0
    for it in range(a.iters):
        warm, n, hi, lo = 100, a.max_iters, 1e-3, 1e-4
        lr = hi * (it + 1) / (warm + 1) if it < warm else lo + 0.5 * (1 + math.cos(math.pi * (it - warm) / (n - warm))) * (hi - lo)
        for g in opt.param_groups:
            g["lr"] = lr
        ix = [rng.next_int(len(train) - T) for _ in range(B)]
        x = torch.stack([torch.from_numpy(train[i:i + T].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(train[i + 1:i + 1 + T].astype(np.int64)) for i in ix])
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ours = logged.get(it)
        if ours is not None:
            worst = max(worst, abs(ours - loss.item()))
        if it < 3 or (it + 1) % 50 == 0:
            print(f"iter {it}: pytorch {loss.item():.5f}  sharpformer {ours if ours is None else f'{ours:.5f}'}", flush=True)
    print(f"largest difference over {a.iters} iterations: {worst:.2e}")


if __name__ == "__main__":
    main()
