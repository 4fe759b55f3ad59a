#!/usr/bin/env python3
"""Writes the PyTorch references for the encoder-decoder (Models/Seq2Seq.cs): logits, label-smoothed loss and
every gradient of a small model, post-LN and pre-LN, with padding on both sides and sinusoidal positions.

Run with Debian's torch:  /usr/bin/python3 tools/oracle/make_seq2seq_references.py
Written from the maths (no nn.Transformer), in float32; parameter names are Seq2Seq's.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

from make_references import OUT, attention, gelu, layer_norm, linear
from safetensors_io import save

torch.set_num_threads(1)
PAD, BOS, EOS = 1, 0, 2


def sinusoids(length, dim):
    table = torch.zeros(length, dim, dtype=torch.float64)
    for pos in range(length):
        for i in range(0, dim, 2):
            angle = pos / 10000 ** (i / dim)
            table[pos, i] = math.sin(angle)
            if i + 1 < dim:
                table[pos, i + 1] = math.cos(angle)
    return table.float()


def sublayer(x, branch, p, ln, pre_ln):
    """x + branch(ln(x)) (pre-LN) or ln(x + branch(x)) (post-LN)."""
    if pre_ln:
        return x + branch(layer_norm(x, p, ln, True))
    return layer_norm(x + branch(x), p, ln, True)


def self_attn(p, name, heads, causal, lengths):
    def run(x):
        q, k, v = linear(x, p, name + ".c_attn", True).split(x.shape[-1], dim=-1)
        return linear(attention(q, k, v, heads, causal, lengths), p, name + ".c_proj", True)
    return run


def cross_attn(p, name, heads, memory, lengths):
    def run(x):
        q = linear(x, p, name + ".q_proj", True)
        k, v = linear(memory, p, name + ".kv_proj", True).split(x.shape[-1], dim=-1)
        return linear(attention(q, k, v, heads, False, lengths), p, name + ".c_proj", True)
    return run


def ffn(p, name, act):
    return lambda x: linear(gelu(linear(x, p, name + ".c_fc", True), act), p, name + ".c_proj", True)


def seq2seq(src, src_lengths, tgt_in, p, cfg, act):
    d, heads, pre_ln = cfg["d_model"], cfg["encoder_attention_heads"], cfg["norm"] == "pre"
    table = sinusoids(cfg["max_position_embeddings"], d)
    src_emb = p["shared.weight"] if cfg["tie_word_embeddings"] else p["encoder.embed_tokens.weight"]
    tgt_emb = p["shared.weight"] if cfg["tie_word_embeddings"] else p["decoder.embed_tokens.weight"]
    x = src_emb[src] * math.sqrt(d) + table[: src.shape[1]]
    for i in range(cfg["encoder_layers"]):
        n = f"encoder.layers.{i}."
        x = sublayer(x, self_attn(p, n + "attn", heads, False, src_lengths), p, n + "ln_1", pre_ln)
        x = sublayer(x, ffn(p, n + "mlp", act), p, n + "ln_2", pre_ln)
    if pre_ln:
        x = layer_norm(x, p, "encoder.layer_norm", True)
    y = tgt_emb[tgt_in] * math.sqrt(d) + table[: tgt_in.shape[1]]
    for i in range(cfg["decoder_layers"]):
        n = f"decoder.layers.{i}."
        y = sublayer(y, self_attn(p, n + "attn", heads, True, None), p, n + "ln_1", pre_ln)
        y = sublayer(y, cross_attn(p, n + "cross_attn", heads, x, src_lengths), p, n + "ln_cross", pre_ln)
        y = sublayer(y, ffn(p, n + "mlp", act), p, n + "ln_2", pre_ln)
    if pre_ln:
        y = layer_norm(y, p, "decoder.layer_norm", True)
    head = p["shared.weight"] if cfg["tie_word_embeddings"] else p["lm_head.weight"]
    return y @ head.t()


def shapes(cfg):
    V, C, H = cfg["vocab_size"], cfg["d_model"], cfg["ffn_dim"]
    s = {}
    if cfg["tie_word_embeddings"]:
        s["shared.weight"] = [V, C]
    else:
        s.update({"encoder.embed_tokens.weight": [V, C], "decoder.embed_tokens.weight": [V, C], "lm_head.weight": [V, C]})

    def linear_shape(name, out, inp):
        s[name + ".weight"], s[name + ".bias"] = [out, inp], [out]

    def ln(name):
        s[name + ".weight"], s[name + ".bias"] = [C], [C]

    for side, layers in (("encoder", cfg["encoder_layers"]), ("decoder", cfg["decoder_layers"])):
        for i in range(layers):
            n = f"{side}.layers.{i}."
            ln(n + "ln_1"); linear_shape(n + "attn.c_attn", 3 * C, C); linear_shape(n + "attn.c_proj", C, C)
            if side == "decoder":
                ln(n + "ln_cross"); linear_shape(n + "cross_attn.q_proj", C, C)
                linear_shape(n + "cross_attn.kv_proj", 2 * C, C); linear_shape(n + "cross_attn.c_proj", C, C)
            ln(n + "ln_2"); linear_shape(n + "mlp.c_fc", H, C); linear_shape(n + "mlp.c_proj", C, H)
        if cfg["norm"] == "pre":
            ln(side + ".layer_norm")
    return s


def random_params(s, gen, d):
    """Embeddings N(0, 1/d), matrices N(0, 0.1), biases N(0, 0.05), LayerNorm gains 1 + N(0, 0.1)."""
    p = {}
    for name, shape in s.items():
        if "embed" in name or name in ("shared.weight", "lm_head.weight"):
            t = torch.randn(*shape, generator=gen) / math.sqrt(d)
        elif len(shape) == 2:
            t = torch.randn(*shape, generator=gen) * 0.1
        elif ".ln_" in name or "layer_norm" in name:
            t = torch.randn(*shape, generator=gen) * 0.1 + (1 if name.endswith(".weight") else 0)
        else:
            t = torch.randn(*shape, generator=gen) * 0.05
        p[name] = t.requires_grad_(True)
    return p


def make(name, norm, tie, act, act_json):
    gen = torch.Generator().manual_seed(2017)
    cfg = {"kind": "seq2seq", "vocab_size": 29, "d_model": 32, "encoder_attention_heads": 4, "encoder_layers": 2, "decoder_layers": 2,
           "ffn_dim": 48, "dropout": 0.0, "max_position_embeddings": 16, "positions": "sinusoidal", "norm": norm,
           "activation": act_json, "tie_word_embeddings": tie, "label_smoothing": 0.1, "layer_norm_epsilon": 1e-5}
    p = random_params(shapes(cfg), gen, cfg["d_model"])
    V = cfg["vocab_size"]
    src_lengths = torch.tensor([7, 4, 1], dtype=torch.int32)
    tgt_lengths = [6, 3, 5]  # target tokens + 1 (<s> in front of the inputs, </s> after the outputs)
    B, S, T = 3, 7, 6
    src = torch.full((B, S), PAD, dtype=torch.int64)
    tgt_in = torch.full((B, T), PAD, dtype=torch.int64)
    tgt_out = torch.full((B, T), -1, dtype=torch.int64)
    for b in range(B):
        src[b, : src_lengths[b]] = torch.randint(4, V, (int(src_lengths[b]),), generator=gen)
        words = torch.randint(4, V, (tgt_lengths[b] - 1,), generator=gen)
        tgt_in[b, 0] = BOS
        tgt_in[b, 1: tgt_lengths[b]] = words
        tgt_out[b, : tgt_lengths[b] - 1] = words
        tgt_out[b, tgt_lengths[b] - 1] = EOS
    logits = seq2seq(src, src_lengths, tgt_in, p, cfg, act)
    loss = F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=-1, label_smoothing=cfg["label_smoothing"])
    loss.backward()
    out = {"src": src.int(), "src_lengths": src_lengths, "tgt_in": tgt_in.int(), "tgt_out": tgt_out.int(),
           "logits": logits.detach(), "loss": loss.detach()}
    for n, t in p.items():
        out["param." + n] = t.detach()
        out["grad." + n] = t.grad
    save(os.path.join(OUT, name + ".safetensors"), out, {"config": json.dumps(cfg)})


if __name__ == "__main__":
    make("seq2seq_postln", "post", True, "relu", "Relu")
    make("seq2seq_preln", "pre", False, "gelu_erf", "GeluErf")
    print("wrote seq2seq_postln, seq2seq_preln")
