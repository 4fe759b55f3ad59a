#!/usr/bin/env python3
"""The PyTorch twin of Sharpformer's encoder-decoder (Models/Seq2Seq.cs) and its translate-de preset.

Same model: pre-LN blocks (x + f(ln(x)), a final LayerNorm per stack), ReLU MLP, biases, the 2017 sinusoids,
embeddings scaled by sqrt(d) and tied three ways, dropout on the embeddings, each residual branch and the attention
probabilities, label smoothing 0.1; same init (embeddings N(0, 1/d), matrices Xavier-uniform, biases 0, gains 1).
Same data: the prepared folder's SPLIT.src.bin / SPLIT.tgt.bin (uint16 ids, each sentence ended by </s> = 2) and
vocab.json. Same batches: pairs bucketed by their longer side (source, or target + 1) rounded up to 8, a bucket
drawn in proportion to its padded tokens, max-tokens // L distinct pairs of it, lengths padded to multiples of 8
(TranslationBatches.cs; the draws come from numpy, not from our generator). Same AdamW (decay on 2-D weights only),
clipping and schedule (warm-up, then cosine to min-lr or inverse-sqrt). Same decoding: greedy and fairseq's beam
search as Seq2Seq.Decode.cs (length limit 1.5·n + 10, length penalty score / length^1), recomputing the decoder
over the prefix at each step instead of caching. Hypotheses go to files that `sharpformer bleu` scores, so both
sides are scored by the same BLEU.

Speed (as `sharpformer bench`):  torch_seq2seq.py --data DIR --steps 20 --json
Train, evaluate, translate:      torch_seq2seq.py --data DIR --train-iters 4000 --out DIR
Run with OMP_NUM_THREADS=2, and OPENBLAS_CORETYPE=SkylakeX on an AVX-512 CPU (bench/compare.sh sets them).
"""
import json
import math
import os
import signal
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import twin

BOS, PAD, EOS = 0, 1, 2
PAD_MULTIPLE = 8

# The translate-de preset (src/Sharpformer/Training/Presets.cs); options below override it.
PRESETS = {
    "translate-de": dict(d_model=128, heads=4, encoder_layers=3, decoder_layers=3, ffn_dim=512, dropout=0.1, label_smoothing=0.1,
                         max_tokens=2048, learning_rate=2e-3, warmup_iters=100, lr_decay_iters=2000, min_lr=1e-4, beta2=0.98, weight_decay=0.01,
                         schedule="cosine", iters=2000),
}


def sinusoids(length, dim):
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    i = torch.arange(0, dim, 2, dtype=torch.float64)
    angle = pos / 10000 ** (i / dim)
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return table.float()


class Attention(nn.Module):
    def __init__(self, d, heads, dropout, cross):
        super().__init__()
        self.heads, self.dropout, self.cross = heads, dropout, cross
        if cross:
            self.q_proj, self.kv_proj = nn.Linear(d, d), nn.Linear(d, 2 * d)
        else:
            self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)

    def forward(self, x, memory=None, mask=None):
        B, T, C = x.shape
        if self.cross:
            q = self.q_proj(x)
            k, v = self.kv_proj(memory).split(C, dim=2)
        else:
            q, k, v = self.c_attn(x).split(C, dim=2)
        S = k.shape[1]
        q, k, v = (t.view(B, -1, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.heads))
        att = att.masked_fill(mask, float("-inf"))  # mask [B or 1, 1, T, S]: True where a key is hidden
        att = F.dropout(F.softmax(att, dim=-1), self.dropout, self.training)
        return self.c_proj((att @ v).transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """Pre-LN: x + drop(attn(ln_1(x))) [+ x + drop(cross(ln_cross(x), memory))] + x + drop(mlp(ln_2(x)))."""

    def __init__(self, d, heads, ffn, dropout, cross):
        super().__init__()
        self.dropout = dropout
        self.ln_1, self.attn = nn.LayerNorm(d), Attention(d, heads, dropout, False)
        if cross:
            self.ln_cross, self.cross_attn = nn.LayerNorm(d), Attention(d, heads, dropout, True)
        self.ln_2, self.c_fc, self.c_proj = nn.LayerNorm(d), nn.Linear(d, ffn), nn.Linear(ffn, d)

    def forward(self, x, self_mask, memory=None, memory_mask=None):
        drop = lambda t: F.dropout(t, self.dropout, self.training)
        x = x + drop(self.attn(self.ln_1(x), mask=self_mask))
        if memory is not None:
            x = x + drop(self.cross_attn(self.ln_cross(x), memory, memory_mask))
        return x + drop(self.c_proj(F.relu(self.c_fc(self.ln_2(x)))))


class Seq2Seq(nn.Module):
    def __init__(self, c, vocab, max_length):
        super().__init__()
        d = c["d_model"]
        self.c, self.d = c, d
        self.shared = nn.Embedding(vocab, d)
        self.register_buffer("positions", sinusoids(max_length, d))
        self.encoder = nn.ModuleList(Block(d, c["heads"], c["ffn_dim"], c["dropout"], False) for _ in range(c["encoder_layers"]))
        self.decoder = nn.ModuleList(Block(d, c["heads"], c["ffn_dim"], c["dropout"], True) for _ in range(c["decoder_layers"]))
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(d), nn.LayerNorm(d)
        for name, p in self.named_parameters():
            if name == "shared.weight":
                nn.init.normal_(p, 0.0, 1 / math.sqrt(d))
            elif name.endswith(".bias"):
                nn.init.zeros_(p)
            elif p.dim() == 1:
                nn.init.ones_(p)
            else:
                nn.init.xavier_uniform_(p)

    def embed(self, ids):
        x = self.shared(ids) * math.sqrt(self.d) + self.positions[: ids.shape[1]]
        return F.dropout(x, self.c["dropout"], self.training)

    def encode(self, src, src_lengths):
        S = src.shape[1]
        mask = (torch.arange(S)[None, :] >= src_lengths[:, None])[:, None, None, :]  # [B, 1, 1, S]
        x = self.embed(src)
        for block in self.encoder:
            x = block(x, mask)
        return self.encoder_norm(x), mask

    def decode(self, tgt_in, memory, memory_mask):
        T = tgt_in.shape[1]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)[None, None]
        y = self.embed(tgt_in)
        for block in self.decoder:
            y = block(y, causal, memory, memory_mask)
        return self.decoder_norm(y) @ self.shared.weight.t()

    def forward(self, src, src_lengths, tgt_in):
        memory, mask = self.encode(src, src_lengths)
        return self.decode(tgt_in, memory, mask)


def read_sentences(path):
    ids = np.fromfile(path, dtype=np.uint16).astype(np.int64)
    ends = np.flatnonzero(ids == EOS)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [ids[s:e] for s, e in zip(starts, ends)]


def read_pairs(folder, split):
    src, tgt = read_sentences(os.path.join(folder, split + ".src.bin")), read_sentences(os.path.join(folder, split + ".tgt.bin"))
    assert len(src) == len(tgt), f"{split}: {len(src)} sources, {len(tgt)} targets"
    return list(zip(src, tgt))


def round_up(n, m):
    return (n + m - 1) // m * m


def make_batch(pairs, max_length, pad_multiple):
    """Source [B, S], lengths, target inputs (<s> + target) and outputs (target + </s>, -1 past the end) [B, T]."""
    S = min(max_length, round_up(max(len(s) for s, _ in pairs), pad_multiple))
    T = min(max_length, round_up(max(len(t) + 1 for _, t in pairs), pad_multiple))
    B = len(pairs)
    src = np.full((B, S), PAD, dtype=np.int64)
    tin = np.full((B, T), PAD, dtype=np.int64)
    tout = np.full((B, T), -1, dtype=np.int64)
    for b, (s, t) in enumerate(pairs):
        src[b, : len(s)] = s
        tin[b, 0] = BOS
        tin[b, 1: len(t) + 1] = t
        tout[b, : len(t)] = t
        tout[b, len(t)] = EOS
    lengths = torch.tensor([len(s) for s, _ in pairs])
    tokens = int(sum(len(s) + len(t) + 1 for s, t in pairs))
    return torch.from_numpy(src), lengths, torch.from_numpy(tin), torch.from_numpy(tout), tokens


class TokenBudgetBatches:
    """TranslationBatches.cs with a token budget: buckets by the longer side rounded to 8, drawn by padded tokens."""

    def __init__(self, pairs, max_tokens, max_length, seed):
        self.pairs, self.max_tokens, self.max_length = pairs, max_tokens, max_length
        groups = {}
        for i, (s, t) in enumerate(pairs):
            groups.setdefault(round_up(max(len(s), len(t) + 1), PAD_MULTIPLE), []).append(i)
        self.buckets = sorted(groups.items())
        weights = np.array([L * len(m) for L, m in self.buckets], dtype=np.float64)
        self.p = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def per_batch(self, bucket):
        L, members = bucket
        return max(1, min(self.max_tokens // L, len(members)))

    def next(self):
        bucket = self.buckets[self.rng.choice(len(self.buckets), p=self.p)]
        chosen = self.rng.choice(bucket[1], size=self.per_batch(bucket), replace=False)
        return make_batch([self.pairs[i] for i in chosen], self.max_length, PAD_MULTIPLE)

    def all(self):
        for bucket in self.buckets:
            n = self.per_batch(bucket)
            for start in range(0, len(bucket[1]), n):
                yield make_batch([self.pairs[i] for i in bucket[1][start:start + n]], self.max_length, PAD_MULTIPLE)


def learning_rate(it, c):
    """LearningRateSchedule.cs: warm-up to the peak at iteration warmup, then cosine to min-lr or inverse-sqrt."""
    lr, warm = c["learning_rate"], c["warmup_iters"]
    if it < warm:
        return lr * (it + 1) / (warm + 1)
    if c["schedule"] == "inverse-sqrt":
        return lr * math.sqrt((warm + 1) / (it + 1))
    if it > c["lr_decay_iters"]:
        return c["min_lr"]
    ratio = (it - warm) / max(1, c["lr_decay_iters"] - warm)
    return c["min_lr"] + 0.5 * (1 + math.cos(math.pi * ratio)) * (lr - c["min_lr"])


def flops_per_batch(model, src, tgt_in):
    """Seq2Seq.FlopsPerExample times the batch: 6·(encoder params·S + (decoder params + head)·T) + attention's 12·C per pair."""
    B, S = src.shape
    T = tgt_in.shape[1]
    count = lambda blocks: sum(p.numel() for b in blocks for p in b.parameters())
    enc, dec = count(model.encoder), count(model.decoder) + model.shared.weight.numel()
    C, Le, Ld = model.d, len(model.encoder), len(model.decoder)
    return B * (6 * (enc * S + dec * T) + 12 * C * (Le * S * S + Ld * (T * T + T * S)))


def loss_of(model, batch, smoothing):
    src, lengths, tin, tout, _ = batch
    logits = model(src, lengths, tin)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tout.reshape(-1), ignore_index=-1, label_smoothing=smoothing)


def mean_loss(model, batches, smoothing):
    """TranslationData.MeanLoss: the per-token mean over every pair, in evaluation mode."""
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            n = int((batch[3] != -1).sum())
            total += loss_of(model, batch, smoothing).item() * n
            tokens += n
    model.train()
    return total / tokens


def translate(model, sources, beam, max_length, lenpen=1.0, a=1.5, b=10, per_batch=32):
    """Seq2Seq.Translate: greedy (beam 1) or fairseq's beam search, sentences in batches, no cache."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(sources), per_batch):
            chunk = sources[start:start + per_batch]
            limits = [int(min(max(math.floor(a * len(s)) + b, 1), max_length)) for s in chunk]
            S = max(len(s) for s in chunk)
            src = torch.full((len(chunk), S), PAD, dtype=torch.long)
            for i, s in enumerate(chunk):
                src[i, : len(s)] = torch.from_numpy(s)
            lengths = torch.tensor([len(s) for s in chunk])
            memory, mask = model.encode(src, lengths)
            out += greedy(model, memory, mask, limits) if beam == 1 else beam_search(model, memory, mask, limits, beam, lenpen)
    return out


def greedy(model, memory, mask, limits):
    n = memory.shape[0]
    prefix = torch.full((n, 1), BOS, dtype=torch.long)
    outputs, done = [[] for _ in range(n)], [False] * n
    step = 0
    while not all(done):
        logits = model.decode(prefix, memory, mask)[:, -1]
        nxt = logits.argmax(-1)
        for i in range(n):
            if done[i]:
                continue
            token = EOS if step == limits[i] - 1 else int(nxt[i])
            if token == EOS:
                done[i] = True
            else:
                outputs[i].append(token)
        prefix = torch.cat([prefix, nxt[:, None]], 1)
        step += 1
    return outputs


def beam_search(model, memory, mask, limits, k, lenpen):
    """Seq2Seq.BeamBatch: of a sentence's best 2K candidates, </s> among the first K finish; the first K others go on."""
    n = memory.shape[0]
    memory, mask = memory.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
    scores = [0.0 if s % k == 0 else -math.inf for s in range(n * k)]
    hyps = [[] for _ in range(n * k)]
    finished = [[] for _ in range(n)]
    done = [False] * n
    step = 0
    while not all(done):
        prefix = torch.tensor([[BOS] + h + [PAD] * (step - len(h)) for h in hyps], dtype=torch.long)
        logp = torch.log_softmax(model.decode(prefix, memory, mask)[:, -1].double(), -1)
        new_scores, new_hyps = list(scores), list(hyps)
        for i in range(n):
            first = i * k
            if done[i]:
                for s in range(first, first + k):
                    new_scores[s] = -math.inf
                continue
            forced = step == limits[i] - 1
            cands = []
            for beam in range(k):
                score = scores[first + beam]
                if score == -math.inf:
                    continue
                if forced:
                    cands.append((score + float(logp[first + beam, EOS]), beam, EOS))
                else:
                    top = torch.topk(logp[first + beam], 2 * k)
                    cands += [(score + float(v), beam, int(t)) for v, t in zip(top.values, top.indices)]
            cands.sort(key=lambda c: (-c[0], c[1], c[2]))  # ties to the earlier (beam, token), as BestCandidates
            cands = cands[: 2 * k]
            live = 0
            for j, (score, beam, token) in enumerate(cands):
                prev = hyps[first + beam]
                if token == EOS:
                    if j < k and len(finished[i]) < k:
                        finished[i].append((prev, score / (len(prev) + 1) ** lenpen))
                elif live < k:
                    new_scores[first + live], new_hyps[first + live] = score, prev + [token]
                    live += 1
            for s in range(first + live, first + k):
                new_scores[s], new_hyps[s] = -math.inf, []
            if len(finished[i]) >= k or live == 0:
                done[i] = True
        scores, hyps = new_scores, new_hyps
        step += 1
    return [max(f, key=lambda h: h[1])[0] if f else [] for f in finished]


def byte_decoder():
    """GPT-2's byte-level alphabet, reversed: the vocabulary's characters back to bytes."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = list(bs), 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def detokenizer(folder):
    vocab = json.load(open(os.path.join(folder, "vocab.json"), encoding="utf-8"))
    tokens = {i: t for t, i in vocab.items()}
    table = byte_decoder()
    return lambda ids: bytes(table[ch] for i in ids if i > 3 for ch in tokens[i]).decode("utf-8", errors="replace")


def main():
    ap = twin.options(PRESETS, "translate-de", "data/translate_de")
    ap.add_argument("--train-iters", type=int, help="instead of timing: train this many iterations, then evaluate and translate the test set")
    ap.add_argument("--out", default="out-torch-translate", help="with --train-iters: where metrics and hypotheses go")
    ap.add_argument("--log-interval", type=int, default=50)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--test-sentences", type=int, default=100000)
    for key in ("max_tokens", "learning_rate", "warmup_iters", "lr_decay_iters", "min_lr", "d_model", "ffn_dim", "encoder_layers", "decoder_layers", "heads", "dropout"):
        ap.add_argument("--" + key.replace("_", "-"), type=type(PRESETS["translate-de"][key]))
    ap.add_argument("--schedule", choices=["cosine", "inverse-sqrt"])
    a = ap.parse_args()
    c = dict(PRESETS[a.preset])
    for key in list(c) + ["schedule"]:
        if getattr(a, key, None) is not None:
            c[key] = getattr(a, key)
    if a.train_iters:
        c["iters"] = a.train_iters
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    meta = json.load(open(os.path.join(a.data, "meta.json")))
    max_length, vocab = meta["max_length"], meta["vocab_size"]
    train = TokenBudgetBatches(read_pairs(a.data, "train"), c["max_tokens"], max_length, a.seed)
    model = Seq2Seq(c, vocab, max_length)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": c["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=c["learning_rate"], betas=(0.9, c["beta2"]))

    def step(it):
        for g in opt.param_groups:
            g["lr"] = learning_rate(it, c)
        batch = train.next()
        loss = loss_of(model, batch, c["label_smoothing"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item(), batch

    if a.train_iters:
        return train_and_translate(a, c, model, step, max_length)

    for it in range(a.warmup):
        step(it)
    tokens = flops = 0
    t0 = time.perf_counter()
    for it in range(a.steps):
        _, batch = step(a.warmup + it)
        tokens += batch[4]
        flops += flops_per_batch(model, batch[0], batch[2])
    dt = time.perf_counter() - t0
    twin.report(a.json, tokens / dt, dt * 1000 / a.steps, flops / dt / 1e9)


def train_and_translate(a, c, model, step, max_length):
    os.makedirs(a.out, exist_ok=True)
    val = TokenBudgetBatches(read_pairs(a.data, "val"), c["max_tokens"], max_length, 0)
    log = open(os.path.join(a.out, "metrics.jsonl"), "w")
    window, t0, cpu0, done = [], time.perf_counter(), time.process_time(), 0
    # SIGINT or SIGTERM stops training early, as `train` does, and evaluation still runs (also in a background job,
    # where the shell leaves SIGINT ignored).
    def stop(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for it in range(c["iters"]):
            loss, _ = step(it)
            done, window = it + 1, window + [loss]
            if (it + 1) % a.log_interval == 0 or it == 0:
                line = {"iter": it + 1, "loss": sum(window) / len(window), "lr": learning_rate(it, c), "seconds": time.perf_counter() - t0}
                print(json.dumps(line), flush=True)
                log.write(json.dumps(line) + "\n")
                window = []
    except KeyboardInterrupt:
        print(json.dumps({"stopped_at_iter": done}), flush=True)
    train_seconds, train_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    val_loss = mean_loss(model, val.all(), c["label_smoothing"])
    torch.save(model.state_dict(), os.path.join(a.out, "model.pt"))
    sources = [s for s, _ in read_pairs(a.data, "test")][: a.test_sentences]
    decode = detokenizer(a.data)
    result = {"iters": done, "config": c, "val_loss": val_loss, "train_seconds": train_seconds, "train_cpu_seconds": train_cpu}
    for beam in (1, a.beam):
        t = time.perf_counter()
        hyps = [decode(h) for h in translate(model, sources, beam, max_length)]
        name = "greedy" if beam == 1 else f"beam{beam}"
        with open(os.path.join(a.out, f"test.{name}.txt"), "w", encoding="utf-8") as f:
            f.write("".join(h + "\n" for h in hyps))
        result[f"{name}_seconds"] = time.perf_counter() - t
    print(json.dumps(result))
    json.dump(result, open(os.path.join(a.out, "result.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
