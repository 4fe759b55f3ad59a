#!/usr/bin/env python3
"""The PyTorch twin of Sharpformer's BERT masked-LM preset for speed comparisons: same shapes, init, batches, AdamW.

BERT as Hugging Face's BertForMaskedLM computes it, written from the maths (eager; torch 1.13 from Debian has no fused
attention): word + position + token-type embeddings, LayerNorm, dropout; post-LN blocks with GELU (erf) attending over
each sequence's own length; the masked-LM head (dense, GELU, LayerNorm, decoder tied to the word embeddings, own bias)
run, as ours is, only at the masked rows. Batches are drawn from the same prepared data (`prepare mlm`): sequences
padded to the block size, 15% of ordinary tokens chosen, 80% [MASK] / 10% random / 10% kept. AdamW with decay on
>= 2-D weights, global-norm clipping 1.0. Prints the same figures as `sharpformer bench --json`; tokens are real
(unpadded) tokens, as ours counts them, and GFLOP/s uses the same count of what is computed (Bert.FlopsPerExample).
Run with OMP_NUM_THREADS=2, and OPENBLAS_CORETYPE=SkylakeX on an AVX-512 CPU (bench/compare.sh sets them).
"""
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import twin

PRESETS = {
    "bert-shakespeare-mlm": dict(vocab_size=4000, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=512, max_position_embeddings=128, type_vocab_size=2, dropout=0.1,
                                 batch_size=32, block_size=128, lr=1e-3, beta2=0.99, weight_decay=0.1),
}
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4  # the order `prepare mlm`'s WordPiece trainer writes them


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        C = c["hidden_size"]
        self.heads, self.p = c["num_attention_heads"], c["dropout"]
        self.qkv = nn.Linear(C, 3 * C)
        self.attn_out = nn.Linear(C, C)
        self.ln_1 = nn.LayerNorm(C, eps=1e-12)
        self.fc = nn.Linear(C, c["intermediate_size"])
        self.proj = nn.Linear(c["intermediate_size"], C)
        self.ln_2 = nn.LayerNorm(C, eps=1e-12)

    def forward(self, x, key_mask):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.heads))
        att = att.masked_fill(key_mask, float("-inf"))
        att = F.dropout(F.softmax(att, dim=-1), self.p, self.training)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = self.ln_1(x + F.dropout(self.attn_out(y), self.p, self.training))
        return self.ln_2(x + F.dropout(self.proj(F.gelu(self.fc(x))), self.p, self.training))


class Bert(nn.Module):
    def __init__(self, c):
        super().__init__()
        C = c["hidden_size"]
        self.c = c
        self.word = nn.Embedding(c["vocab_size"], C)
        self.position = nn.Embedding(c["max_position_embeddings"], C)
        self.token_type = nn.Embedding(c["type_vocab_size"], C)
        self.ln_e = nn.LayerNorm(C, eps=1e-12)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c["num_hidden_layers"]))
        self.transform = nn.Linear(C, C)
        self.ln_h = nn.LayerNorm(C, eps=1e-12)
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))
        for m in self.modules():  # Hugging Face's _init_weights
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, ids, lengths, rows, targets):
        B, T = ids.shape
        x = self.word(ids) + self.position(torch.arange(T))[None] + self.token_type(torch.zeros_like(ids))
        x = F.dropout(self.ln_e(x), self.c["dropout"], self.training)
        key_mask = (torch.arange(T)[None, :] >= lengths[:, None])[:, None, None, :]  # [B, 1, 1, T]
        for b in self.blocks:
            x = b(x, key_mask)
        h = x.view(B * T, -1)[rows]                                                    # masked rows only
        h = self.ln_h(F.gelu(self.transform(h)))
        return F.cross_entropy(h @ self.word.weight.t() + self.bias, targets)


def sequences(folder, split="train"):
    ids = np.fromfile(os.path.join(folder, split + ".bin"), dtype=np.uint16).astype(np.int64)
    lengths = np.fromfile(os.path.join(folder, split + ".lengths.bin"), dtype=np.uint16).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return [ids[s:s + n] for s, n in zip(starts, lengths)]


def make_batches(seqs, c, gen):
    B, T, V = c["batch_size"], c["block_size"], c["vocab_size"]

    def batch():
        ids = torch.full((B, T), PAD, dtype=torch.long)
        lengths = torch.zeros(B, dtype=torch.long)
        for b, i in enumerate(torch.randint(len(seqs), (B,), generator=gen).tolist()):
            s = torch.from_numpy(seqs[i][:T])
            ids[b, :len(s)] = s
            lengths[b] = len(s)
        ordinary = ids > MASK
        chosen = ordinary & (torch.rand(B, T, generator=gen) < 0.15)
        r = torch.rand(B, T, generator=gen)
        targets = ids[chosen]
        masked = ids.clone()
        masked[chosen & (r < 0.8)] = MASK
        swap = chosen & (r >= 0.8) & (r < 0.9)
        masked[swap] = torch.randint(MASK + 1, V, (int(swap.sum()),), generator=gen)
        rows = chosen.view(-1).nonzero().squeeze(1)
        return masked, lengths, rows, targets

    return batch


def flops_per_batch(c, lengths, masked_rows):
    """Bert.FlopsPerExample times the batch: block weights over every padded row, attention over each sequence's keys, head at masked rows."""
    C, L, Fw, V, B, T = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], c["vocab_size"], c["batch_size"], c["block_size"]
    block = 4 * C * C + 4 * C + 2 * C * Fw + Fw + C + 4 * C  # qkv, attention output, feed-forward, two LayerNorms
    return 6 * L * block * B * T + 12 * L * C * T * int(lengths.sum()) + 6 * (C * C + C * V) * masked_rows


def main():
    a = twin.options(PRESETS, "bert-shakespeare-mlm", "data/shakespeare_mlm", "a folder written by `sharpformer prepare mlm`").parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    c = PRESETS[a.preset]
    batch = make_batches(sequences(a.data), c, torch.Generator().manual_seed(a.seed))
    model = Bert(c)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": c["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=c["lr"], betas=(0.9, c["beta2"]))

    def step():
        ids, lengths, rows, targets = batch()
        loss = model(ids, lengths, rows, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return int(lengths.sum()), flops_per_batch(c, lengths, len(rows))

    warm = time.perf_counter()
    for i in range(10 ** 9):  # at least --warmup steps and 2 s, as ours
        step()
        if i + 1 >= a.warmup and time.perf_counter() - warm >= 2:
            break
    tokens = flops = 0
    t0 = time.perf_counter()
    for _ in range(a.steps):
        n, f = step()
        tokens += n
        flops += f
    seconds = time.perf_counter() - t0
    twin.report(a.json, tokens / seconds, seconds / a.steps * 1000, flops / seconds / 1e9)


if __name__ == "__main__":
    main()
