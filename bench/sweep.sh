#!/usr/bin/env bash
# Attention's O(T²), measured on both sides: the PyTorch twin (bench/peers/torch_gpt.py --sweep: nanoGPT's
# materialised softmax(QKᵀ) attention, its step's peak memory measured in a child process), then
# `sharpformer bench --sweep block-size`, which draws the twin's measured points on sweep.png beside ours and
# adds them to its table.
# Usage: bench/sweep.sh [PRESET] [LENGTHS] [OUT] [THREADS]     (needs: apt-get install python3-torch libopenblas0-openmp)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-shakespeare-char-baby}
lengths=${2:-64,128,256,512,1024,2048}
out=${3:-bench-sweep}
threads=${4:-2}
export OMP_NUM_THREADS=$threads
# As compare.sh: Debian's OpenBLAS needs telling that Zen 4 can run its SkylakeX kernels.
if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi
dotnet build -c Release src/Sharpformer.Cli >/dev/null
mkdir -p "$out"
/usr/bin/python3 bench/peers/torch_gpt.py --preset "$preset" --sweep "$lengths" --threads "$threads" --json > "$out/twin.json"
dotnet src/Sharpformer.Cli/bin/Release/net10.0/Sharpformer.Cli.dll bench --preset "$preset" --sweep block-size --lengths "$lengths" \
  --threads "$threads" --sweep-out "$out" --sweep-peer "$out/twin.json"
