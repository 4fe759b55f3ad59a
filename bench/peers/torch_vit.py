#!/usr/bin/env python3
"""The PyTorch twin of Sharpformer's ViT for speed comparisons: same shapes, init, AdamW groups, clipping, batch.

Hugging Face ViTForImageClassification's maths written out (as the oracle script does): a stride-P convolution
as the patch embedding, [CLS] and learned positions, pre-LN blocks with GELU (erf), final LayerNorm, a linear head
on [CLS]. AdamW with timm's groups (no decay on biases, LayerNorm weights, cls_token, position_embeddings),
global-norm clipping 1.0. Each batch is drawn, normalised and augmented as Sharpformer's ImageBatches does
(random crop from a zero-padded image, horizontal flip, as the preset adjusts the folder's) from the prepared
folder's bytes (`sharpformer prepare fashion-mnist`), so the twin pays the same data cost. Eager (torch 1.13: no fused attention). Prints the same
figures as `sharpformer bench`; --json prints one object. Run with OMP_NUM_THREADS=2, and
OPENBLAS_CORETYPE=SkylakeX on an AVX-512 CPU (bench/compare.sh sets them).
"""
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import twin

# The presets of src/Sharpformer/Training/Presets.cs (model shape, batch and augmentation: augment off, or crop
# padding in place of the folder's; AdamW's settings below).
PRESETS = {
    "vit-fashion-quick": dict(patch=7, width=64, layers=4, heads=4, mlp=128, dropout=0.0, batch=128, lr=2e-3, wd=0.05, augment=False),
    "vit-fashion": dict(patch=7, width=128, layers=6, heads=8, mlp=512, dropout=0.1, batch=128, lr=1e-3, wd=0.05, crop=0),
}


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        D = c["width"]
        self.heads, self.dropout = c["heads"], c["dropout"]
        self.ln_1 = nn.LayerNorm(D, eps=1e-12)
        self.c_attn = nn.Linear(D, 3 * D)
        self.c_proj = nn.Linear(D, D)
        self.ln_2 = nn.LayerNorm(D, eps=1e-12)
        self.c_fc = nn.Linear(D, c["mlp"])
        self.mlp_proj = nn.Linear(c["mlp"], D)

    def attn(self, x):
        B, T, D = x.shape
        q, k, v = self.c_attn(x).split(D, dim=2)
        q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        att = F.softmax((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1))), dim=-1)  # no attention dropout (timm's default)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, D)
        return F.dropout(self.c_proj(y), self.dropout, self.training)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + F.dropout(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)))), self.dropout, self.training)


class ViT(nn.Module):
    def __init__(self, c, channels, size, classes):
        super().__init__()
        D, P = c["width"], c["patch"]
        self.dropout = c["dropout"]
        self.projection = nn.Conv2d(channels, D, P, stride=P)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.position_embeddings = nn.Parameter(torch.zeros(1, (size // P) ** 2 + 1, D))
        self.blocks = nn.ModuleList(Block(c) for _ in range(c["layers"]))
        self.layernorm = nn.LayerNorm(D, eps=1e-12)
        self.classifier = nn.Linear(D, classes)
        for n, p in self.named_parameters():  # Hugging Face ViT's _init_weights
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif n.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, images):
        x = self.projection(images).flatten(2).transpose(1, 2)  # [B, N, D]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.position_embeddings
        x = F.dropout(x, self.dropout, self.training)
        for b in self.blocks:
            x = b(x)
        return self.classifier(self.layernorm(x)[:, 0])


class Images:
    """The prepared folder's bytes [N, C, H, W] and int32 labels, drawn as ImageBatches draws them."""

    def __init__(self, folder, split, augment=True, crop=None):
        meta = json.load(open(os.path.join(folder, "meta.json")))
        self.c, self.h, self.w = meta["channels"], meta["height"], meta["width"]
        self.classes, self.pad, self.flip = len(meta["classes"]), meta.get("crop_padding", 0), meta.get("horizontal_flip", False)
        if crop is not None:
            self.pad = crop
        if not augment:
            self.pad, self.flip = 0, False
        self.mean = torch.tensor(meta["mean"]).view(1, -1, 1, 1)
        self.std = torch.tensor(meta["std"]).view(1, -1, 1, 1)
        self.images = np.fromfile(os.path.join(folder, f"{split}.images"), dtype=np.uint8).reshape(-1, self.c, self.h, self.w)
        self.labels = np.fromfile(os.path.join(folder, f"{split}.labels"), dtype=np.int32).astype(np.int64)

    def batch(self, n):
        ix = torch.randint(len(self.labels), (n,))
        x = torch.from_numpy(self.images[ix.numpy()]).float().div_(255)
        if self.pad:
            padded = F.pad(x, (self.pad,) * 4)
            dy, dx = torch.randint(2 * self.pad + 1, (2, n))
            x = torch.stack([padded[i, :, dy[i]:dy[i] + self.h, dx[i]:dx[i] + self.w] for i in range(n)])
        if self.flip:
            flip = torch.rand(n) < 0.5
            x[flip] = x[flip].flip(-1)
        return (x - self.mean) / self.std, torch.from_numpy(self.labels[ix.numpy()])


def main():
    a = twin.options(PRESETS, "vit-fashion-quick", "data/fashion_mnist").parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    c = PRESETS[a.preset]
    data = Images(a.data, "train", c.get("augment", True), c.get("crop"))
    model = ViT(c, data.c, data.h, data.classes)
    spared = {"cls_token", "position_embeddings"}
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and n not in spared]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or n in spared]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": c["wd"]}, {"params": no_decay, "weight_decay": 0.0}], lr=c["lr"], betas=(0.9, 0.999))

    def step():
        x, y = data.batch(c["batch"])
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = (time.perf_counter() - t0) / a.steps

    # Sharpformer's Vit.FlopsPerExample: (6N + 12·L·D·T)·T over the T = patches + 1 tokens.
    n_params = sum(p.numel() for p in model.parameters())
    T = (data.h // c["patch"]) ** 2 + 1
    flops_per_image = (6 * n_params + 12 * c["layers"] * c["width"] * T) * T
    images_per_s = c["batch"] / dt
    twin.report(a.json, images_per_s * T, dt * 1000, flops_per_image * images_per_s / 1e9, train_examples_per_s=images_per_s)


if __name__ == "__main__":
    main()
