#!/usr/bin/env python3
"""Writes the small-BERT reference files the C# Bert oracle tests compare against.

Run with Debian's torch:  /usr/bin/python3 tools/oracle/make_bert_references.py
BERT is written here from the maths (no Hugging Face code), in float32, with Hugging Face's parameter names
(query/key/value separate, attention.output.*, intermediate.dense, output.*, cls.predictions.*), so the C#
side also exercises its Hugging Face name mapping. The pre-LN variant (not in Hugging Face) keeps the same
names, LayerNorms moved before each sub-layer, plus bert.encoder.LayerNorm at the end.
Files: bert_small_postln.safetensors, bert_small_preln.safetensors (masked LM), bert_small_classifier.safetensors.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

from safetensors_io import save

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "Sharpformer.Tests", "OracleData")
torch.set_num_threads(1)

CFG = {"vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 48,
       "hidden_act": "gelu", "max_position_embeddings": 16, "type_vocab_size": 2, "layer_norm_eps": 1e-12}


def gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def ln(x, p, name):
    return F.layer_norm(x, x.shape[-1:], p[name + ".weight"], p[name + ".bias"], CFG["layer_norm_eps"])


def dense(x, p, name):
    return F.linear(x, p[name + ".weight"], p[name + ".bias"])


def attention(x, p, pre, heads, lengths):
    B, T, C = x.shape
    D = C // heads
    q, k, v = (dense(x, p, pre + "attention.self." + n).view(B, T, heads, D).transpose(1, 2) for n in ("query", "key", "value"))
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)
    keep = torch.arange(T)[None, :] < lengths[:, None]                       # [B, T] keys
    scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
    y = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
    return dense(y, p, pre + "attention.output.dense")


def mlp(x, p, pre):
    return dense(gelu(dense(x, p, pre + "intermediate.dense")), p, pre + "output.dense")


def encoder(ids, segments, lengths, p, pre_ln):
    B, T = ids.shape
    x = p["bert.embeddings.word_embeddings.weight"][ids] + p["bert.embeddings.position_embeddings.weight"][:T] \
        + p["bert.embeddings.token_type_embeddings.weight"][segments]
    x = ln(x, p, "bert.embeddings.LayerNorm")
    for i in range(CFG["num_hidden_layers"]):
        pre = f"bert.encoder.layer.{i}."
        if pre_ln:
            x = x + attention(ln(x, p, pre + "attention.output.LayerNorm"), p, pre, CFG["num_attention_heads"], lengths)
            x = x + mlp(ln(x, p, pre + "output.LayerNorm"), p, pre)
        else:
            x = ln(x + attention(x, p, pre, CFG["num_attention_heads"], lengths), p, pre + "attention.output.LayerNorm")
            x = ln(x + mlp(x, p, pre), p, pre + "output.LayerNorm")
    return ln(x, p, "bert.encoder.LayerNorm") if pre_ln else x


def mlm_logits(h, p):
    h = ln(gelu(dense(h, p, "cls.predictions.transform.dense")), p, "cls.predictions.transform.LayerNorm")
    return h @ p["bert.embeddings.word_embeddings.weight"].t() + p["cls.predictions.bias"]


def class_logits(h, p):
    pooled = torch.tanh(dense(h[:, 0], p, "bert.pooler.dense"))
    return dense(pooled, p, "classifier")


def shapes(pre_ln, labels):
    V, C, Fw = CFG["vocab_size"], CFG["hidden_size"], CFG["intermediate_size"]
    s = {"bert.embeddings.word_embeddings.weight": [V, C], "bert.embeddings.position_embeddings.weight": [CFG["max_position_embeddings"], C],
         "bert.embeddings.token_type_embeddings.weight": [CFG["type_vocab_size"], C], "bert.embeddings.LayerNorm.weight": [C]}
    for i in range(CFG["num_hidden_layers"]):
        pre = f"bert.encoder.layer.{i}."
        for n in ("query", "key", "value"):
            s[pre + "attention.self." + n + ".weight"] = [C, C]
        s.update({pre + "attention.output.dense.weight": [C, C], pre + "attention.output.LayerNorm.weight": [C],
                  pre + "intermediate.dense.weight": [Fw, C], pre + "output.dense.weight": [C, Fw], pre + "output.LayerNorm.weight": [C]})
    if pre_ln:
        s["bert.encoder.LayerNorm.weight"] = [C]
    if labels:
        s.update({"bert.pooler.dense.weight": [C, C], "classifier.weight": [labels, C]})
    else:
        s.update({"cls.predictions.transform.dense.weight": [C, C], "cls.predictions.transform.LayerNorm.weight": [C]})
    for name, shape in list(s.items()):
        if "embeddings.weight" not in name or "LayerNorm" in name:
            s[name.replace(".weight", ".bias")] = [shape[0]]
    if not labels:
        s["cls.predictions.bias"] = [V]
    return s


def random_params(s, gen):
    """Matrices N(0, 0.1) (larger than BERT's 0.02 so the blocks do real work); LayerNorm gains 1 + N(0, 0.1); biases N(0, 0.1)."""
    p = {}
    for name, shape in s.items():
        t = torch.randn(*shape, generator=gen) * 0.1
        if "LayerNorm.weight" in name:
            t += 1
        p[name] = t.requires_grad_(True)
    return p


def make(name, *, pre_ln=False, labels=0):
    gen = torch.Generator().manual_seed(4321 + labels + (7 if pre_ln else 0))
    p = random_params(shapes(pre_ln, labels), gen)
    B, T = 3, 12
    lengths = torch.tensor([12, 7, 3])
    ids = torch.randint(5, CFG["vocab_size"], (B, T), generator=gen)
    segments = torch.zeros(B, T, dtype=torch.long)
    segments[0, 6:] = 1
    segments[1, 4:7] = 1
    for b in range(B):
        ids[b, 0] = 2                          # [CLS]
        ids[b, lengths[b] - 1] = 3             # [SEP]
        ids[b, lengths[b]:] = 0                # [PAD]
        segments[b, lengths[b]:] = 0
    h = encoder(ids, segments, lengths, p, pre_ln)
    cfg = dict(CFG, pre_layer_norm=pre_ln, num_labels=labels)
    out = {"ids": ids.int(), "segments": segments.int(), "lengths": lengths.int(), "hidden": h.detach()}
    if labels:
        y = torch.tensor([2, 0, 1])
        logits = class_logits(h, p)
        loss = F.cross_entropy(logits, y)
        out["labels"] = y.int()
    else:
        targets = torch.full((B, T), -1, dtype=torch.long)
        for b, t in [(0, 1), (0, 4), (0, 10), (1, 2), (1, 5), (2, 1)]:
            targets[b, t] = ids[b, t]
            ids[b, t] = 4 if (b + t) % 3 else ids[b, t]   # mostly [MASK], some kept
        out["ids"] = ids.int()
        h = encoder(ids, segments, lengths, p, pre_ln)
        out["hidden"] = h.detach()
        logits = mlm_logits(h, p)
        loss = F.cross_entropy(logits.reshape(-1, CFG["vocab_size"]), targets.reshape(-1), ignore_index=-1)
        out["targets"] = targets.int()
    loss.backward()
    out["logits"] = logits.detach()
    out["loss"] = loss.detach()
    for n, t in p.items():
        out["param." + n] = t.detach()
        out["grad." + n] = t.grad
    save(os.path.join(OUT, name + ".safetensors"), out, {"config": json.dumps(cfg)})
    print(name, float(loss))


if __name__ == "__main__":
    make("bert_small_postln")
    make("bert_small_preln", pre_ln=True)
    make("bert_small_classifier", labels=3)
