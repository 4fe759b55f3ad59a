#!/usr/bin/env bash
# Runs `sharpformer bench` and the PyTorch twin (bench/peers/torch_gpt.py; torch_bert.py for bert-*, torch_seq2seq.py for translate-de, torch_vit.py for vit-*) alternately, twice each, in one
# invocation, keeps the best of each, and prints every figure with the ratio ours / PyTorch.
# Usage: bench/compare.sh [PRESET] [STEPS]     (needs: apt-get install python3-torch libopenblas0-openmp)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-shakespeare-char-baby}
steps=${2:-20}
export OMP_NUM_THREADS=2
# Debian's OpenBLAS does not recognise Zen 4 and falls back to its SSE3 kernels (5x slower); its SkylakeX
# kernels suit it. Those need AVX-512: on a CPU without it (Zen 3), OpenBLAS picks the right kernels itself.
if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi
dotnet build -c Release src/Sharpformer.Cli >/dev/null
ours=(dotnet src/Sharpformer.Cli/bin/Release/net10.0/Sharpformer.Cli.dll bench --preset "$preset" --steps "$steps" --threads 2 --json)
twin=(/usr/bin/python3 bench/peers/torch_gpt.py --preset "$preset" --steps "$steps" --threads 2 --json)
case "$preset" in
  # BERT: the twin reads the masked-LM data ours prepares on its first run (data/shakespeare_mlm).
  bert-*) twin=(/usr/bin/python3 bench/peers/torch_bert.py --preset "$preset" --steps "$steps" --threads 2 --data data/shakespeare_mlm --json) ;;
  # The ViT twin draws and augments its batches from the folder ours prepares on first use (ours runs first).
  vit-fashion-quick|vit-fashion) twin=(/usr/bin/python3 bench/peers/torch_vit.py --preset "$preset" --data data/fashion_mnist --steps "$steps" --threads 2 --json) ;;
  # The encoder-decoder twin trains on the same prepared sentence pairs, read from the folder ours prepares.
  translate-de)
    [ -d data/translate_de ] || dotnet src/Sharpformer.Cli/bin/Release/net10.0/Sharpformer.Cli.dll prepare translation --gettext de >&2
    twin=(/usr/bin/python3 bench/peers/torch_seq2seq.py --preset "$preset" --data data/translate_de --steps "$steps" --threads 2 --json) ;;
esac
tmp=$(mktemp -d)
for round in 1 2; do
  "${ours[@]}" > "$tmp/ours$round.json"
  "${twin[@]}" > "$tmp/twin$round.json"
done
/usr/bin/python3 - "$tmp" "$preset" <<'PY'
import json, sys, os
d, preset = sys.argv[1], sys.argv[2]
load = lambda name: [json.load(open(os.path.join(d, f"{name}{r}.json"))) for r in (1, 2)]
ours, twin = load("ours"), load("twin")
best = lambda runs, key, higher: (max if higher else min)(r[key] for r in runs if r.get(key) is not None) if any(r.get(key) is not None for r in runs) else None
rows = [("train_tokens_per_s", True), ("train_examples_per_s", True), ("ms_per_step", False), ("gflops", True), ("peak_fraction", True),
        ("alloc_bytes_per_step", False), ("peak_working_set_bytes", False), ("sample_tokens_per_s", True)]
print(f"preset {preset}: best of 2 runs each, alternating")
print(f"{'figure':26} {'sharpformer':>14} {'pytorch':>14} {'ours/pytorch':>13}")
for key, higher in rows:
    a, b = best(ours, key, higher), best(twin, key, higher)
    ratio = f"{a / b:13.2f}" if a and b else f"{'':>13}"
    fmt = lambda v: f"{v:14.1f}" if isinstance(v, float) else f"{v:>14}" if v is not None else f"{'-':>14}"
    print(f"{key:26} {fmt(a)} {fmt(b)} {ratio}")
print(f"measured FMA peak: {best(ours, 'peak_gflops', True):.0f} GFLOP/s; kernels' SIMD path: {ours[0].get('simd', '?')}")
PY
rm -rf "$tmp"
