#!/usr/bin/env bash
# For course authors on a machine with an NVIDIA GPU: the CUDA tests, the blog's epoch table, the bench at 512 px
# and notebooks 04-06 executed on the GPU, each part's output written to OUTDIR. Needs torch, torchvision, pytest,
# matplotlib and (for the notebooks) papermill and ipykernel importable; it installs nothing itself.
#
#   bash scripts/gpu_session.sh OUTDIR [tests] [epochs] [bench] [notebooks]     (default: all four)
#
# Each part has its own time limit, so one that hangs cannot take the others' time. On the H200 (16 cores) the
# tests, epochs and notebooks parts took 6.5 minutes; the bench part is sized to take about 4 (an earlier, larger
# one ran out of time: results/README.md). The epoch table uses a 2000-image sample set, the rest the usual 200.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${1:?usage: bash scripts/gpu_session.sh OUTDIR [tests] [epochs] [bench] [notebooks]}
shift
PARTS=${*:-tests epochs bench notebooks}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HELPERS_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUTDIR"
SAMPLE=/tmp/gpu-sample LARGE=/tmp/gpu-sample-2000

part() {  # part NAME SECONDS COMMAND...: run COMMAND under a limit, output to OUTDIR/NAME.txt, one status line
  local name=$1 limit=$2 start=$SECONDS
  shift 2
  timeout --kill-after=10 "$limit" "$@" >"$OUTDIR/$name.txt" 2>&1
  local rc=$?
  echo "== $name: exit $rc after $((SECONDS - start)) s (limit $limit s)" | tee -a "$OUTDIR/parts.txt"
}

{
  date -u +"%Y-%m-%d %H:%M UTC"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  echo "$(nproc) CPU cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  $PY -c "import sys, torch, torchvision; print('Python', sys.version.split()[0], '| torch', torch.__version__,
'| torchvision', torchvision.__version__, '| CUDA', torch.version.cuda, '| cuDNN', torch.backends.cudnn.version())"
} >"$OUTDIR/machine.txt" 2>&1

[ -d "$SAMPLE" ] || $PY -m helpers sample-data "$SAMPLE" --per-class 100 --seed 0 >/dev/null 2>&1

for p in $PARTS; do
  case $p in
    tests)
      part cuda_tests 240 $PY -m pytest -m cuda tests/test_cuda.py -rA -s -q -p no:cacheprovider ;;
    epochs)
      [ -d "$LARGE" ] || $PY - "$LARGE" <<'EOF'
import sys
from multiprocessing import Pool
from pathlib import Path
from helpers.loading.samples import SAMPLE_CLASSES, sample_image_bytes

def write(job):
    kind, i = job
    path = Path(sys.argv[1]) / kind / f"{kind}.{i}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sample_image_bytes(kind, i, 0))

with Pool() as pool:
    pool.map(write, [(k, i) for k in SAMPLE_CLASSES for i in range(1000)], chunksize=50)
EOF
      part epochs 240 $PY -m helpers epochs --data "$LARGE" --device cuda \
        --csv "$OUTDIR/epochs.csv" --plot "$OUTDIR/epochs.png" ;;
    bench)
      part bench_blog 120 $PY -m helpers bench --data "$SAMPLE" --workers 0 1 2 4 8 12 16 --pipeline blog \
        --model none resnet18 --image-size 512 --batches 24 --repeats 3 --device cuda --no-progress \
        --csv "$OUTDIR/bench_blog.csv"
      # fast and gpu at 2 and 16 workers only: a loader-only window at 16 workers is 256 batches of 256 images.
      part bench_fast 150 $PY -m helpers bench --data "$SAMPLE" --workers 2 16 --pipeline fast \
        --model none resnet18 --image-size 512 --batches 24 --repeats 2 --device cuda --no-progress \
        --csv "$OUTDIR/bench_fast.csv"
      part bench_gpu 120 $PY -m helpers bench --data "$SAMPLE" --workers 2 16 --pipeline gpu \
        --model none resnet18 --image-size 512 --batches 24 --repeats 2 --device cuda --no-progress \
        --csv "$OUTDIR/bench_gpu.csv"
      # the loader alone without pinning (--device cpu), beside the pinned blog rows above
      part bench_blog_unpinned 60 $PY -m helpers bench --data "$SAMPLE" --workers 8 16 --pipeline blog --model none \
        --image-size 512 --batches 24 --repeats 3 --device cpu --no-progress
      part pin_costs 30 $PY -c "from helpers.timing.breakdown import pin_costs; from helpers.timing.tables import format_table
print(format_table(pin_costs(512, 256, 6), [('pin', 'pin', 'd'), ('mb_per_batch', 'MB', '.0f'), ('ms', 'ms', '.1f'),
      ('gb_per_s', 'GB/s', '.1f'), ('images_per_s', 'images/s', '.0f')]))" ;;
    notebooks)
      mkdir -p "$OUTDIR/nb"
      for nb in 04_training 05_timing_workers 06_cheaper_workers 07_beyond_the_loader; do
        part "nb_$nb" 150 $PY -m papermill "notebooks/$nb.ipynb" "$OUTDIR/nb/$nb.ipynb" --cwd notebooks \
          -p data_dir "$SAMPLE" -p device cuda --no-progress-bar
      done ;;
    *) echo "unknown part $p (tests, epochs, bench, notebooks)"; exit 2 ;;
  esac
done
cat "$OUTDIR/parts.txt"
