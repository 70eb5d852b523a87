"""The blog post's experiment done right: a frozen, pretrained ResNet18 trained on an ImageFolder of cats and dogs.

Run `python scripts/train.py --help`. Without --data it trains on the generated sample set.
"""
import multiprocessing
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # find `helpers` without installing it

from helpers.app.cli import train_main as main  # noqa: E402

# Worker processes started with spawn or forkserver (Windows and macOS; Linux too from Python 3.14, whose default is
# forkserver) re-import this file; the guard keeps them from training a model of their own. freeze_support() only
# matters in a program frozen into an executable, and does nothing otherwise.
if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
