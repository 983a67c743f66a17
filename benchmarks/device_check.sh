#!/usr/bin/env bash
# One prepared run on a lent GPU machine (see docs/gpu.md): Resume, a fixed
# number of steps on the GPU and on the CPU, plus a small CPU sweep of model
# settings scored on the dev set. Expects wheels in .whl/ and, in .device/,
# the Resume DocBins and jieba's dict.txt.gz (the machine has no registry).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
STEPS=${STEPS:-600}; SWEEP_SECONDS=${SWEEP_SECONDS:-330}
DATASET=${DATASET:-resume}; GPU_CHECK=${GPU_CHECK:-1}; SWEEP_STEPS=${SWEEP_STEPS:-0}
CONFIG=${CONFIG:-$DATASET}  # e.g. CONFIG=resume_gpu (configs/resume_gpu.cfg)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site . || exit 1
mkdir -p /tmp/site/jieba && : > /tmp/site/jieba/__init__.py && gunzip -c .device/dict.txt.gz > /tmp/site/jieba/dict.txt
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
D=.device; TRAIN="--paths.train $D/${DATASET}_train.spacy --paths.dev $D/${DATASET}_dev.spacy"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/summary.txt"
python3 -c "import torch, cupy, spacy, thinc; print('torch', torch.__version__, 'cupy', cupy.__version__, 'spacy', spacy.__version__, 'thinc', thinc.__version__)" | tee -a "$OUT/summary.txt" || exit 1

timed_train() {  # name, threads, time limit (s), extra args...
  local name=$1 threads=$2 limit=$3; shift 3
  local start=$EPOCHREALTIME
  OMP_NUM_THREADS=$threads timeout "$limit" python3 -m spacy train configs/$CONFIG.cfg $TRAIN --output /tmp/runs/$name "$@" > /tmp/runs/$name.log 2>&1
  local rc=$?
  echo "$name rc=$rc wall_s=$(awk "BEGIN {print $EPOCHREALTIME - $start}")" >> /tmp/runs/walls.txt
}
mkdir -p /tmp/runs
if [ "$GPU_CHECK" = 1 ]; then
# 1. GPU vs CPU, same steps, same config.
timed_train gpu 2 300 --gpu-id 0 --training.max_steps $STEPS --training.max_epochs 0 --training.eval_frequency 200
tail -n 6 /tmp/runs/gpu.log >> "$OUT/summary.txt"
grep -q "rc=0" /tmp/runs/walls.txt || { cat /tmp/runs/gpu.log | tail -n 40; cp /tmp/runs/gpu.log "$OUT/"; exit 1; }
# 2. CPU reference (2 threads) and the sweep (2 threads each), in parallel.
timed_train cpu 2 $SWEEP_SECONDS --training.max_steps $STEPS --training.max_epochs 0 --training.eval_frequency 200 &
fi
E=components.lexner_tagger.model.embed; M=components.lexner_tagger.model
LIMIT=""; [ "$SWEEP_STEPS" != 0 ] && LIMIT="--training.max_steps $SWEEP_STEPS"
sweep() { local name=$1; shift; timed_train "$name" 2 "$SWEEP_SECONDS" --training.eval_frequency 200 $LIMIT "$@" & }
if [ "$DATASET" = resume ]; then
sweep base
sweep freq --$E.weighting frequency
sweep nobigram --$E.bigram_width 0
sweep notype --$E.type_width 0
sweep nolex --$E.use_lexicon false
sweep wdrop3 --$E.word_dropout 0.3
sweep lr1 --training.optimizer.learn_rate 0.001
else
sweep base
sweep drop3 --$E.dropout 0.3 --$M.encoder.dropout 0.3
sweep lr4 --training.optimizer.learn_rate.initial_rate 0.004
sweep batch300 --training.batcher.size 300
sweep hidden300 --$M.encoder.hidden_width 300
sweep wdrop3 --$E.word_dropout 0.3
sweep rows32k --$E.bigram_rows 32768 --$E.word_rows 32768
sweep nolex --$E.use_lexicon false
fi
wait
for log in /tmp/runs/*.log; do echo "== $log"; grep -E "^ +[0-9]+ +[0-9]+ " "$log" | tail -n 40; done > "$OUT/sweep_logs.txt"
cat /tmp/runs/walls.txt >> "$OUT/summary.txt"
for run in /tmp/runs/*/; do
  name=$(basename "$run"); [ -d "$run/model-best" ] || continue
  for split in dev test; do
    OMP_NUM_THREADS=1 python3 -m spacy evaluate "$run/model-best" $D/${DATASET}_$split.spacy --output /tmp/runs/$name.$split.json > /dev/null 2>&1 &
  done
done
wait
python3 - "$OUT" <<'PY'
import json, glob, os, sys
rows = []
for path in sorted(glob.glob("/tmp/runs/*.dev.json")):
    name = os.path.basename(path).split(".")[0]
    dev = json.load(open(path)); test_path = path.replace(".dev.", ".test.")
    test = json.load(open(test_path)) if os.path.exists(test_path) else {}
    rows.append({"run": name, "dev_f": dev.get("ents_f"), "test_f": test.get("ents_f"), "speed": dev.get("speed")})
json.dump(rows, open(os.path.join(sys.argv[1], "sweep.json"), "w"), indent=1)
for r in rows: print(r)
PY
