#!/usr/bin/env python3
"""Writes the PyTorch reference files for the Vision Transformer oracle tests.

Run with Debian's torch:  /usr/bin/python3 tools/oracle/make_vit_references.py
The ViT is written here from the maths (as tools/oracle/make_references.py writes GPT), in float32, under
Sharpformer's parameter names: Hugging Face ViTForImageClassification's outside the blocks, the project's
TransformerBlock names (ln_1, attn.c_attn with q, k, v fused, ...) under vit.encoder.layer.N inside them.
"""
import json
import math
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


def hf_vit(images, p, cfg):
    """ViTForImageClassification's forward from the maths, under Hugging Face's own names and shapes."""
    eps, D, H = cfg["layer_norm_eps"], cfg["hidden_size"], cfg["num_attention_heads"]
    lin = lambda x, name: F.linear(x, p[name + ".weight"], p[name + ".bias"])
    ln = lambda x, name: F.layer_norm(x, (D,), p[name + ".weight"], p[name + ".bias"], eps)
    x = F.conv2d(images, p["vit.embeddings.patch_embeddings.projection.weight"], p["vit.embeddings.patch_embeddings.projection.bias"],
                 stride=cfg["patch_size"]).flatten(2).transpose(1, 2)
    x = torch.cat([p["vit.embeddings.cls_token"].expand(x.shape[0], 1, -1), x], dim=1) + p["vit.embeddings.position_embeddings"]
    B, T, _ = x.shape
    for i in range(cfg["num_hidden_layers"]):
        pre = f"vit.encoder.layer.{i}."
        h = ln(x, pre + "layernorm_before")
        q, k, v = (lin(h, pre + "attention.attention." + n).view(B, T, H, D // H).transpose(1, 2) for n in ("query", "key", "value"))
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D // H), dim=-1) @ v
        x = x + lin(a.transpose(1, 2).reshape(B, T, D), pre + "attention.output.dense")
        h = lin(ln(x, pre + "layernorm_after"), pre + "intermediate.dense")
        x = x + lin(0.5 * h * (1 + torch.erf(h / math.sqrt(2))), pre + "output.dense")
    return lin(ln(x, "vit.layernorm")[:, 0], "classifier")


def make_hf_vit(name):
    """A random ViTForImageClassification folder (config.json, preprocessor_config.json, model.safetensors) and its logits."""
    gen = torch.Generator().manual_seed(777)
    labels = ["cat", "dog", "bird"]
    cfg = {"model_type": "vit", "architectures": ["ViTForImageClassification"], "image_size": 8, "patch_size": 4, "num_channels": 3,
           "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 24, "hidden_act": "gelu",
           "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "layer_norm_eps": 1e-12, "qkv_bias": True,
           "initializer_range": 0.02, "id2label": {str(i): n for i, n in enumerate(labels)}, "label2id": {n: i for i, n in enumerate(labels)}}
    D, I, n = 16, 24, 4
    shapes = {"vit.embeddings.cls_token": [1, 1, D], "vit.embeddings.position_embeddings": [1, n + 1, D],
              "vit.embeddings.patch_embeddings.projection.weight": [D, 3, 4, 4], "vit.embeddings.patch_embeddings.projection.bias": [D]}
    for i in range(2):
        pre = f"vit.encoder.layer.{i}."
        for part in ("query", "key", "value"):
            shapes[pre + f"attention.attention.{part}.weight"] = [D, D]
            shapes[pre + f"attention.attention.{part}.bias"] = [D]
        shapes.update({pre + "attention.output.dense.weight": [D, D], pre + "attention.output.dense.bias": [D],
                       pre + "intermediate.dense.weight": [I, D], pre + "intermediate.dense.bias": [I],
                       pre + "output.dense.weight": [D, I], pre + "output.dense.bias": [D],
                       pre + "layernorm_before.weight": [D], pre + "layernorm_before.bias": [D],
                       pre + "layernorm_after.weight": [D], pre + "layernorm_after.bias": [D]})
    shapes.update({"vit.layernorm.weight": [D], "vit.layernorm.bias": [D], "classifier.weight": [3, D], "classifier.bias": [3]})
    p = {k: torch.randn(*s, generator=gen) * (0.1 if "layernorm" in k else 0.3) + (1.0 if "layernorm" in k and k.endswith("weight") else 0.0)
         for k, s in shapes.items()}
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    save(os.path.join(folder, "model.safetensors"), p, {"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "ViTImageProcessor", "do_normalize": True, "image_mean": mean, "image_std": std,
                   "do_rescale": True, "rescale_factor": 1 / 255, "size": {"height": 8, "width": 8}}, f, indent=2)
    pixels = torch.randint(0, 256, (2, 3, 8, 8), generator=gen)
    images = (pixels / 255.0 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    save(os.path.join(OUT, name + "_reference.safetensors"), {"pixels": pixels.int(), "logits": hf_vit(images.float(), p, cfg)})


if __name__ == "__main__":
    make_hf_vit("hf_vit_tiny")
    make_vit("vit_small", image_size=12, patch_size=4, channels=3, pooling="cls")
    make_vit("vit_small_mean", image_size=8, patch_size=2, channels=1, pooling="mean")
    print("wrote vit_small, vit_small_mean")
