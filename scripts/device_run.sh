#!/usr/bin/env bash
# What runs on a lent GPU machine (issue 27), in two calls, each well inside the device tool's 10-minute limit:
#
#   bash scripts/device_run.sh check   # tests/test_device.py; bench --device cuda: forward costs, every method on
#                                      # `complete`, the diffusion strategies
#   bash scripts/device_run.sh train   # tiny-code-diffusion trained on the corpus, then its bench there
#
# Its inputs travel in .gpu/ (git-ignored), made here beforehand:
#   .gpu/models.tar.xz   assets/models (check: all of them; train: tiny-code alone, the init and the judge)
#   .gpu/corpus.npz.xz   python -m playground.training.train corpus --pack .gpu/corpus.npz.xz   (train only)
#   .whl/                wheels the GPU image lacks (SQLAlchemy, for the CLI's recorder). Its transformers was
#                        5.17 on 2026-12-04, older than the locked lower bound (5.24, where models take `cache=`):
#                        carry a transformers wheel too (about 12 MiB: then pack fewer models for `check`)
# Its outputs go to $OUT (the device tool's folder that comes back), or ./device-out. DEVICE=cpu with LIMIT=1 and
# MINUTES=0.2 tries the whole script on a CPU first.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-device-out}; DEVICE=${DEVICE:-cuda}; LIMIT=${LIMIT:-10}; MINUTES=${MINUTES:-4}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --root-user-action=ignore --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
for packed in .gpu/*.tar.xz; do
  [ -e "$packed" ] && python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(filter='data')" "$packed"
done
PY="python3"; [ -x .venv/bin/python ] && PY=.venv/bin/python
BENCH="$PY -m playground bench --device $DEVICE --prompts complete --limit $LIMIT --json"
DIFFUSION_METHODS=diffusion:strategy=fixed_steps:cache=prefix,diffusion:strategy=threshold,\
diffusion:strategy=threshold:cache=none,diffusion:strategy=threshold:cache=none:threshold=0.7,\
diffusion:strategy=sched,diffusion:strategy=freedave:cache=none,diffusion:strategy=freedave:cache=prefix

case "${1:-}" in
check)
  { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    $PY -c "import sys, torch, transformers; print(sys.version.split()[0], torch.__version__, transformers.__version__)"
  } | tee "$OUT/machine.txt"
  timeout 240 $PY -m pytest -p no:cacheprovider -v tests/test_device.py 2>&1 | tee "$OUT/test_device.log" | tail -15
  timeout 90 $BENCH --forward-costs --repeats 30 > "$OUT/forward_costs.json"
  timeout 240 $BENCH --max-new-tokens 128 --methods \
autoregressive,speculative,speculative:gamma=3,speculative:gamma=6,self_speculative,early_exit,prompt_lookup,copyspec,\
tree_speculative,tree_speculative:tree=static,tree_speculative:nodes=16:depth=6:topk=4:min_path=0.1,\
tree_speculative:nodes=32:depth=8:topk=4:min_path=0.05,token_recycling,hf_greedy,hf_assisted \
    > "$OUT/bench_complete.json"
  timeout 120 $BENCH --model tiny-code-diffusion --max-new-tokens 128 --methods "$DIFFUSION_METHODS" \
    > "$OUT/bench_diffusion_shipped.json"
  ;;
train)
  $PY -m playground.training.train corpus --unpack .gpu/corpus.npz.xz | tail -2
  timeout 420 $PY -m playground.training.train diffusion-corpus --fresh --device "$DEVICE" --minutes "$MINUTES" \
    ${BATCH:+--batch-size "$BATCH"} 2>&1 \
    | tr '\r' '\n' | grep -v "^tiny-code-diffusion:" | tee "$OUT/train.log" | tail -12
  mkdir -p "$OUT/tiny-code-diffusion"
  cp assets/models/tiny-code-diffusion/{model.safetensors,config.json,training.json} "$OUT/tiny-code-diffusion/"
  timeout 150 $BENCH --model tiny-code-diffusion --max-new-tokens 128 --methods "$DIFFUSION_METHODS" \
    > "$OUT/bench_diffusion_trained.json"
  ;;
*) echo "usage: bash scripts/device_run.sh check|train" >&2; exit 2 ;;
esac
ls -la "$OUT"
