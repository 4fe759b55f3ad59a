#!/usr/bin/env python3
"""Writes the PyTorch reference files for the Vision Transformer oracle tests.

Run with Debian's torch:  /usr/bin/python3 tools/oracle/make_vit_references.py
The ViT is written here from the maths (as tools/oracle/make_references.py writes GPT), in float32, under
Sharpformer's parameter names: Hugging Face ViTForImageClassification's outside the blocks, the project's
TransformerBlock names (ln_1, attn.c_attn with q, k, v fused, ...) under vit.encoder.layer.N inside them.
"""
import json
import os

import torch
import torch.nn.functional as F

from make_references import OUT, block, block_shapes, layer_norm, random_params
from safetensors_io import save


def vit(images, p, cfg):
    """images [B, C, H, W] (normalised) -> logits [B, labels]."""
    x = F.conv2d(images, p["vit.embeddings.patch_embeddings.projection.weight"],
                 p["vit.embeddings.patch_embeddings.projection.bias"], stride=cfg["patch_size"])  # [B, D, H/P, W/P]
    x = x.flatten(2).transpose(1, 2)                                                                   # [B, N, D]
    cls = p["vit.embeddings.cls_token"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + p["vit.embeddings.position_embeddings"]
    for i in range(cfg["num_hidden_layers"]):
        x = block(x, p, f"vit.encoder.layer.{i}.", cfg["num_attention_heads"], causal=False, act="gelu_erf")
    x = layer_norm(x, p, "vit.layernorm", True)
    pooled = x[:, 0] if cfg["pooling"] == "cls" else x[:, 1:].mean(dim=1)
    return F.linear(pooled, p["classifier.weight"], p["classifier.bias"])


def make_vit(name, *, image_size, patch_size, channels, pooling):
    gen = torch.Generator().manual_seed(4321)
    cfg = {"image_size": image_size, "patch_size": patch_size, "num_channels": channels, "hidden_size": 32,
           "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64, "num_labels": 5,
           "layer_norm_eps": 1e-5, "pooling": pooling}
    D, n = cfg["hidden_size"], (image_size // patch_size) ** 2
    shapes = {"vit.embeddings.patch_embeddings.projection.weight": [D, channels, patch_size, patch_size],
              "vit.embeddings.patch_embeddings.projection.bias": [D],
              "vit.embeddings.cls_token": [1, 1, D],
              "vit.embeddings.position_embeddings": [n + 1, D]}
    for i in range(cfg["num_hidden_layers"]):
        layer = block_shapes(f"vit.encoder.layer.{i}.", D, True)
        # An MLP of intermediate_size, not 4·D.
        layer[f"vit.encoder.layer.{i}.mlp.c_fc.weight"] = [cfg["intermediate_size"], D]
        layer[f"vit.encoder.layer.{i}.mlp.c_fc.bias"] = [cfg["intermediate_size"]]
        layer[f"vit.encoder.layer.{i}.mlp.c_proj.weight"] = [D, cfg["intermediate_size"]]
        shapes.update(layer)
    shapes.update({"vit.layernorm.weight": [D], "vit.layernorm.bias": [D], "classifier.weight": [5, D], "classifier.bias": [5]})
    p = random_params(shapes, gen)
    # Larger embeddings than N(0, 0.02) so attention is not uniform and every path carries signal.
    for k in ("vit.embeddings.cls_token", "vit.embeddings.position_embeddings", "vit.embeddings.patch_embeddings.projection.weight"):
        with torch.no_grad():
            p[k].mul_(10)
    with torch.no_grad():
        p["vit.layernorm.weight"].add_(1)  # a gain near 1, as random_params gives the blocks' ln_1 and ln_2
    images = torch.randn(3, channels, image_size, image_size, generator=gen)
    labels = torch.tensor([4, 0, 2])
    logits = vit(images, p, cfg)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    out = {"images": images, "labels": labels.int(), "logits": logits.detach(), "loss": loss.detach()}
    for k, t in p.items():
        out["param." + k] = t.detach()
        out["grad." + k] = t.grad
    save(os.path.join(OUT, name + ".safetensors"), out, {"config": json.dumps(cfg)})


if __name__ == "__main__":
    make_vit("vit_small", image_size=12, patch_size=4, channels=3, pooling="cls")
    make_vit("vit_small_mean", image_size=8, patch_size=2, channels=1, pooling="mean")
    print("wrote vit_small, vit_small_mean")
