#!/usr/bin/env python3
"""Writes a tiny random GPT-2 in the Hugging Face layout, with logits and loss from our own PyTorch forward.

The folder is what GPT2LMHeadModel.save_pretrained writes: config.json and model.safetensors with the
"transformer." prefix, Conv1D weights stored [in, out], causal-mask buffers attn.bias, no lm_head (tied).
Run with Debian's torch:  /usr/bin/python3 tools/oracle/make_hf_gpt2.py
"""
import json
import os

import torch
import torch.nn.functional as F

from make_references import block, block_shapes, layer_norm, random_params
from safetensors_io import save

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "Sharpformer.Tests", "OracleData")
CONV1D = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")

if __name__ == "__main__":
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(2024)
    L, H, C, T, V = 2, 4, 32, 64, 50257
    shapes = {"transformer.wte.weight": [V, C], "transformer.wpe.weight": [T, C]}
    for i in range(L):
        shapes.update(block_shapes(f"transformer.h.{i}.", C, True))
    shapes.update({"transformer.ln_f.weight": [C], "transformer.ln_f.bias": [C]})
    p = {n: t.detach() for n, t in random_params(shapes, gen).items()}

    # "Hello world" is 15496, 995 in GPT-2's BPE; the rest are fixed ids.
    ids = torch.tensor([[15496, 995, 11, 428, 318, 257, 7009, 402, 11571, 12, 17, 1332, 13, 50256, 464, 3290]])
    x = p["transformer.wte.weight"][ids] + p["transformer.wpe.weight"][: ids.shape[1]]
    for i in range(L):
        x = block(x, p, f"transformer.h.{i}.", H, act="gelu_tanh")
    logits = layer_norm(x, p, "transformer.ln_f", True) @ p["transformer.wte.weight"].t()
    loss = F.cross_entropy(logits[0, :-1], ids[0, 1:])

    folder = os.path.join(OUT, "hf_gpt2_tiny")
    os.makedirs(folder, exist_ok=True)
    hf = {}
    for name, t in p.items():
        hf[name] = t.t().contiguous() if name.endswith(CONV1D) else t
        if name.endswith(".ln_1.weight"):
            hf[name.replace("ln_1.weight", "attn.bias")] = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
    save(os.path.join(folder, "model.safetensors"), hf, {"format": "pt"})
    config = {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
        "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": T, "n_embd": C, "n_head": H,
        "n_inner": None, "n_layer": L, "n_positions": T, "resid_pdrop": 0.1, "vocab_size": V,
    }
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    save(os.path.join(OUT, "hf_gpt2_tiny_reference.safetensors"),
         {"input_ids": ids.int(), "logits": logits.detach(), "loss": loss.detach()})
    print("wrote", folder, "loss", loss.item())
