"""The training of scripts/train.py over several processes with DistributedDataParallel, started by torchrun.

One machine, two processes (gloo on the CPU, NCCL with one GPU per process):

    torchrun --standalone --nproc_per_node=2 scripts/train_ddp.py --epochs 2

Several machines: run the same command on every machine; HOST:29400 must be reachable from all of them.

    torchrun --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d --rdzv_endpoint=HOST:29400 --rdzv_id=JOB \
        scripts/train_ddp.py ...

--num-workers and --batch-size are per process. Without torchrun it trains as a single process.
Run `python scripts/train_ddp.py --help` for the options.
"""
import multiprocessing
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # find `helpers` without installing it

from helpers.app.cli import ddp_main as main  # noqa: E402

# Worker processes started with spawn re-import this file; the guard keeps them from joining the training.
if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
