#!/usr/bin/env python3
"""Writes the PyTorch reference files the C# oracle tests compare against.

Run with Debian's torch:  /usr/bin/python3 tools/oracle/make_references.py
The models are written here from the maths (no nn.Transformer*, no Hugging Face code), in float32.
Parameter names are Hugging Face GPT-2's; Linear weights use nn.Linear's [out, in] layout.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

from safetensors_io import save

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "Sharpformer.Tests", "OracleData")
torch.set_num_threads(1)


def gelu(x, kind):
    if kind == "gelu_tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if kind == "gelu_erf":
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    return torch.relu(x)


def layer_norm(x, p, name, bias):
    return F.layer_norm(x, x.shape[-1:], p[name + ".weight"], p[name + ".bias"] if bias else None, 1e-5)


def linear(x, p, name, bias):
    return F.linear(x, p[name + ".weight"], p[name + ".bias"] if bias else None)


def attention(q, k, v, heads, causal, key_lengths=None):
    """q [B,Tq,C], k/v [B,Tk,C]; causal is bottom-right aligned; keys >= key_lengths[b] are masked."""
    B, Tq, C = q.shape
    Tk, D = k.shape[1], C // heads
    q = q.view(B, Tq, heads, D).transpose(1, 2)
    k = k.view(B, Tk, heads, D).transpose(1, 2)
    v = v.view(B, Tk, heads, D).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)
    mask = torch.ones(Tq, Tk, dtype=torch.bool)
    if causal:
        mask = torch.tril(mask, diagonal=Tk - Tq)
    mask = mask.expand(B, 1, Tq, Tk).clone()
    if key_lengths is not None:
        for b in range(B):
            mask[b, :, :, int(key_lengths[b]):] = False
    scores = scores.masked_fill(~mask, float("-inf"))
    y = torch.softmax(scores, dim=-1) @ v
    return y.transpose(1, 2).reshape(B, Tq, C)


def self_attention(x, p, name, heads, causal, bias, key_lengths=None):
    q, k, v = linear(x, p, name + ".c_attn", bias).split(x.shape[-1], dim=-1)
    return linear(attention(q, k, v, heads, causal, key_lengths), p, name + ".c_proj", bias)


def cross_attention(x, memory, p, name, heads, bias, memory_lengths):
    q = linear(x, p, name + ".q_proj", bias)
    k, v = linear(memory, p, name + ".kv_proj", bias).split(x.shape[-1], dim=-1)
    return linear(attention(q, k, v, heads, False, memory_lengths), p, name + ".c_proj", bias)


def mlp(x, p, name, bias, act):
    return linear(gelu(linear(x, p, name + ".c_fc", bias), act), p, name + ".c_proj", bias)


def block(x, p, pre, heads, *, causal=True, bias=True, act="gelu_tanh", post_ln=False, key_lengths=None, memory=None, memory_lengths=None):
    if post_ln:
        x = layer_norm(x + self_attention(x, p, pre + "attn", heads, causal, bias, key_lengths), p, pre + "ln_1", bias)
        return layer_norm(x + mlp(x, p, pre + "mlp", bias, act), p, pre + "ln_2", bias)
    x = x + self_attention(layer_norm(x, p, pre + "ln_1", bias), p, pre + "attn", heads, causal, bias, key_lengths)
    if memory is not None:
        x = x + cross_attention(layer_norm(x, p, pre + "ln_cross", bias), memory, p, pre + "cross_attn", heads, bias, memory_lengths)
    return x + mlp(layer_norm(x, p, pre + "ln_2", bias), p, pre + "mlp", bias, act)


def block_shapes(pre, C, bias, cross=False):
    s = {pre + "ln_1.weight": [C], pre + "attn.c_attn.weight": [3 * C, C], pre + "attn.c_proj.weight": [C, C],
         pre + "ln_2.weight": [C], pre + "mlp.c_fc.weight": [4 * C, C], pre + "mlp.c_proj.weight": [C, 4 * C]}
    if cross:
        s.update({pre + "ln_cross.weight": [C], pre + "cross_attn.q_proj.weight": [C, C],
                  pre + "cross_attn.kv_proj.weight": [2 * C, C], pre + "cross_attn.c_proj.weight": [C, C]})
    if bias:
        for name, shape in list(s.items()):
            s[name.replace(".weight", ".bias")] = [shape[0]]
    return s


def random_params(shapes, gen):
    """Weights and biases N(0, 0.02); LayerNorm gains 1 + N(0, 0.1), LayerNorm biases N(0, 0.1)."""
    p = {}
    for name, shape in shapes.items():
        is_ln = ".ln_" in "." + name or name.startswith("ln_")
        std = 0.1 if is_ln else 0.02
        t = torch.randn(*shape, generator=gen) * std
        if is_ln and name.endswith(".weight"):
            t += 1
        p[name] = t.requires_grad_(True)
    return p


def gpt(idx, p, cfg):
    B, T = idx.shape
    x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][:T]
    for i in range(cfg["n_layer"]):
        x = block(x, p, f"transformer.h.{i}.", cfg["n_head"], bias=cfg["bias"], act=cfg["activation"])
    x = layer_norm(x, p, "transformer.ln_f", cfg["bias"])
    return x @ p["transformer.wte.weight"].t()


def make_gpt(name, bias, act):
    gen = torch.Generator().manual_seed(1234)
    cfg = {"vocab_size": 65, "block_size": 32, "n_layer": 2, "n_head": 4, "n_embd": 64, "bias": bias, "activation": act,
           "lr": 1e-2, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "grad_clip": 1.0}
    C = cfg["n_embd"]
    shapes = {"transformer.wte.weight": [65, C], "transformer.wpe.weight": [32, C]}
    for i in range(cfg["n_layer"]):
        shapes.update(block_shapes(f"transformer.h.{i}.", C, bias))
    shapes["transformer.ln_f.weight"] = [C]
    if bias:
        shapes["transformer.ln_f.bias"] = [C]
    p = random_params(shapes, gen)
    idx = torch.randint(0, 65, (3, 33), generator=gen)
    x, targets = idx[:, :32].contiguous(), idx[:, 1:].clone()
    targets[0, 5] = targets[1, 0] = targets[2, 31] = -1
    logits = gpt(x, p, cfg)
    loss = F.cross_entropy(logits.view(-1, 65), targets.view(-1), ignore_index=-1)
    # Scale the loss so the gradient norm is well above the clip (clipping must be exercised).
    loss_scale = 50.0
    cfg["loss_scale"] = loss_scale
    (loss * loss_scale).backward()
    grads = {n: t.grad.clone() for n, t in p.items()}
    norm = torch.nn.utils.clip_grad_norm_(list(p.values()), cfg["grad_clip"])
    assert norm > 1.5, norm
    decay = [t for n, t in p.items() if t.dim() >= 2]
    no_decay = [t for n, t in p.items() if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"])
    before = {n: t.detach().clone() for n, t in p.items()}
    opt.step()
    out = {"idx": x.int(), "targets": targets.int(), "logits": logits.detach(), "loss": loss.detach(), "grad_norm": norm.detach()}
    for n in p:
        out["param." + n] = before[n]
        out["grad." + n] = grads[n]
        out["after." + n] = p[n].detach()
    save(os.path.join(OUT, name + ".safetensors"), out, {"config": json.dumps(cfg)})


def make_block(name, *, post_ln=False, act="gelu_tanh", decoder=False):
    gen = torch.Generator().manual_seed(99)
    C, H = 64, 4
    cfg = {"n_embd": C, "n_head": H, "activation": act, "norm": "post_ln" if post_ln else "pre_ln", "causal": decoder, "cross_attention": decoder}
    p = random_params(block_shapes("", C, True, cross=decoder), gen)
    if decoder:
        x = torch.randn(2, 13, C, generator=gen).requires_grad_(True)
        memory = torch.randn(2, 21, C, generator=gen).requires_grad_(True)
        memory_lengths = torch.tensor([21, 15], dtype=torch.int32)
        y = block(x, p, "", H, causal=True, act=act, memory=memory, memory_lengths=memory_lengths)
    else:
        x = torch.randn(3, 17, C, generator=gen).requires_grad_(True)
        key_lengths = torch.tensor([17, 9, 1], dtype=torch.int32)
        y = block(x, p, "", H, causal=False, act=act, post_ln=post_ln, key_lengths=key_lengths)
    w_out = torch.randn(*y.shape, generator=gen)
    loss = (y * w_out).sum()
    loss.backward()
    out = {"x": x.detach(), "w_out": w_out, "y": y.detach(), "loss": loss.detach(), "grad.x": x.grad}
    if decoder:
        out.update({"memory": memory.detach(), "memory_lengths": memory_lengths, "grad.memory": memory.grad})
    else:
        out["key_lengths"] = key_lengths
    for n, t in p.items():
        out["param." + n] = t.detach()
        out["grad." + n] = t.grad
    save(os.path.join(OUT, name + ".safetensors"), out, {"config": json.dumps(cfg)})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make_gpt("gpt_small", bias=True, act="gelu_tanh")
    make_gpt("gpt_small_nobias", bias=False, act="gelu_erf")
    make_block("encoder_block")
    make_block("encoder_block_postln_relu", post_ln=True, act="relu")
    make_block("decoder_block", decoder=True)
    print("wrote", sorted(os.listdir(OUT)))
