#!/usr/bin/env bash
# The speed issue's GPU figures in one command, for a lent GPU machine that has CUDA, PyTorch,
# numpy, safetensors, tqdm and onnxruntime but neither stocksent installed nor the internet.
# The data set does not travel with the checkout, so carry a copy inside it:
#
#   here:   mkdir -p .device-data && cp ../shared/data/StockTwits_SPY_Sentiment_2017.gz .device-data/
#           grep -qx '/.device-data/' .git/info/exclude || echo /.device-data/ >> .git/info/exclude
#   there:  bash bench/gpu.sh        (device run, carry [".device-data"], timeout about 540 s)
#
# It writes each step's table and JSON to $OUT (bench/results when unset) as soon as the step ends,
# so a run cut short still returns what it finished: the suite in fp32 (the whole training split
# padded to 244 as well), a full `stocksent train` of the default preset in fp32 (its own epochs,
# or EPOCHS), then the suite with bf16 autocast. A dry run on a CPU: DEVICE=cpu PADDED=64 EPOCHS=1 PYTHON=.venv/bin/python bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/results}
device=${DEVICE:-cuda}
python=${PYTHON:-python3}
data=${DATA:-.device-data/StockTwits_SPY_Sentiment_2017.gz}
export PYTHONPATH=src:bench PYTHONUNBUFFERED=1
mkdir -p "$out"

if [ "$device" = cuda ]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
fi
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' \
    | tee -a "$out/gpu.txt"

suite() {  # NAME, then extra flags for bench/suite.py
    local name=$1
    shift
    "$python" bench/suite.py --device "$device" --data "$data" --padded-messages "${PADDED:-0}" --no-memory \
        --json "$out/$name.json" "$@" | tee "$out/$name.txt"
}

suite suite_fp32 --no-bf16
"$python" -m stocksent.cli train --device "$device" --data "$data" --no-bf16 ${EPOCHS:+--epochs "$EPOCHS"} \
    --out "${TMPDIR:-/tmp}/stocksent-gpu-model" --force --json > "$out/train_fp32.json"
if [ "$device" = cuda ]; then
    suite suite_bf16 --bf16
fi
