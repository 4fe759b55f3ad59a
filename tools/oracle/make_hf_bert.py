#!/usr/bin/env python3
"""Writes two tiny random BERTs in the Hugging Face layout, with hidden states and logits from our own PyTorch forward.

Each folder is what save_pretrained(safe_serialization=True) writes for BertForMaskedLM / BertForSequenceClassification:
config.json, model.safetensors (names with the "bert." prefix; the decoder tied to the word embeddings is left out, as
safetensors drops shared tensors; the unused position_ids buffer, int64, is there as older transformers saved it), and
vocab.txt + tokenizer_config.json. The maths is make_bert_references.py's (written from the paper, no Hugging Face code).
Run with Debian's torch:  /usr/bin/python3 tools/oracle/make_hf_bert.py
"""
import json
import os

import torch

from make_bert_references import CFG, OUT, class_logits, encoder, mlm_logits, random_params, shapes
from safetensors_io import save

# [PAD] [UNK] [CLS] [SEP] [MASK] at 0..4, as the reference batches use them, then 45 ordinary word pieces.
WORDS = ("the to be or not that is question whether tis nobler in mind suffer slings and arrows of outrageous fortune "
         "take arms against a sea troubles by opposing end them die sleep no more say we heart ache , . ##s ##ing ##ed ##ly ?").split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
assert len(VOCAB) == CFG["vocab_size"], len(VOCAB)


def hf_config(labels):
    c = {"architectures": ["BertForSequenceClassification" if labels else "BertForMaskedLM"], "attention_probs_dropout_prob": 0.1,
         "hidden_dropout_prob": 0.1, "initializer_range": 0.02, "model_type": "bert", "pad_token_id": 0,
         "position_embedding_type": "absolute", "torch_dtype": "float32", "transformers_version": "4.40.0", "use_cache": True}
    c.update({k: CFG[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                                  "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps")})
    if labels:
        c["id2label"] = {str(i): n for i, n in enumerate(["negative", "neutral", "positive"][:labels])}
        c["label2id"] = {n: i for i, n in c["id2label"].items()}
    return c


def make(name, labels, seed):
    gen = torch.Generator().manual_seed(seed)
    p = {n: t.detach() for n, t in random_params(shapes(False, labels), gen).items()}
    B, T = 2, 11
    lengths = torch.tensor([11, 6])
    ids = torch.randint(5, CFG["vocab_size"], (B, T), generator=gen)
    segments = torch.zeros(B, T, dtype=torch.long)
    segments[0, 5:] = 1
    for b in range(B):
        ids[b, 0], ids[b, lengths[b] - 1], ids[b, lengths[b]:] = 2, 3, 0
        segments[b, lengths[b]:] = 0
    ids[0, 3] = ids[1, 2] = 4                                             # [MASK]
    h = encoder(ids, segments, lengths, p, False)
    logits = class_logits(h, p) if labels else mlm_logits(h, p)

    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    tensors = dict(p)
    tensors["bert.embeddings.position_ids"] = torch.arange(CFG["max_position_embeddings"]).view(1, -1)
    save(os.path.join(folder, "model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(hf_config(labels), f, indent=2)
    with open(os.path.join(folder, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "tokenizer_class": "BertTokenizer", "model_max_length": CFG["max_position_embeddings"]}, f, indent=2)
    save(os.path.join(OUT, name + "_reference.safetensors"),
         {"ids": ids.int(), "segments": segments.int(), "lengths": lengths.int(), "hidden": h, "logits": logits})
    print("wrote", folder)


if __name__ == "__main__":
    make("hf_bert_tiny", 0, 2025)
    make("hf_bert_tiny_classifier", 3, 2026)
