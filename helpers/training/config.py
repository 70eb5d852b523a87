"""TrainConfig: everything a training run depends on, checked when it is made; each field carries its option's help,
check and choices, from which helpers.app.cli builds the command line; config_from_args reads the parsed values back."""
from __future__ import annotations

import argparse
import multiprocessing
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from .. import options
from ..errors import OptionError
from ..loading.loaders import PERSISTENT_WORKERS
from ..loading.stalls import refuse_without_signals
from ..loading.transforms import PIPELINES


def option(default: Any, help: str, check: Callable[[Any], Any] | None = None,
           choices: tuple[str, ...] | None = None) -> Any:
    """A TrainConfig field with its command-line help, the check its values pass, and the choices it accepts."""
    return field(default=default, metadata=dict(help=help, check=check, choices=choices))


def flag_of(name: str) -> str:
    """The command-line spelling of a field, so an error names the option the user typed."""
    return "--" + name.replace("_", "-")


START_METHODS = tuple(multiprocessing.get_all_start_methods())


@dataclass
class TrainConfig:
    """Everything a run depends on; stored in each checkpoint. Bad values raise OptionError when it is made."""

    data: str | None = option(None, "ImageFolder root (class folders inside); default: the generated sample set in "
                                    "data/sample ($HELPERS_DATA_DIR/sample), made on first use")
    epochs: int = option(3, "total epochs, counting resumed ones", options.positive_int)
    num_workers: int | str = option(2, "DataLoader worker processes, or auto: start at Little's law's count from one "
                                        "item's measured cost, then try neighbours between epochs and settle on the "
                                        "fewest workers tied with the best", options.worker_count_or_auto)
    batch_size: int = option(16, "images per batch (per process under torchrun)", options.positive_int)
    image_size: int = option(224, "side of the square model input, in pixels", options.positive_int)
    pipeline: str = option("standard", "; ".join(f"{k}: {v}" for k, v in PIPELINES.items()), choices=tuple(PIPELINES))
    device: str = option("auto", "auto (CUDA when there is a GPU), cpu, cuda or cuda:N", options.device_name)
    start_method: str | None = option(None, "how worker processes start (default: the platform's)",
                                      choices=START_METHODS)
    checkpoint: str | None = option("runs/checkpoint.pt", "written after every epoch; '' for none")
    resume: bool = option(False, "continue after the checkpoint's last epoch, or mid-epoch where it stopped")
    checkpoint_every_steps: int | None = option(None, "also checkpoint every N optimizer steps of an epoch, so "
                                                      "--resume continues mid-epoch, exactly as an unbroken run",
                                                options.positive_int)
    seed: int = option(0, "seeds the split, the shuffling and the workers", options.count)
    lr: float = option(3e-3, "the head's learning rate (Adam)", options.positive_float)
    val_fraction: float = option(0.2, "share of the images held out for validation", options.fraction)
    pretrained: bool = option(True, "skip the ImageNet weights (random backbone)")
    max_batches: int | None = option(None, "cap batches per split per epoch (quick runs); default: all",
                                     options.positive_int)
    persistent_workers: bool = option(PERSISTENT_WORKERS, "start workers afresh for every pass instead of keeping them alive "
                                            "between epochs (start-up paid each time; ignored with --num-workers 0)")
    read_latency_ms: float = option(0.0, "each file read first waits this many ms: the bench's model of remote "
                                         "storage (a sleep that uses no core)", options.milliseconds)
    prefetch_factor: int | None = option(None, "batches each worker loads ahead (needs --num-workers 1 or more)",
                                         options.positive_int)
    timeout: float = option(0, "seconds to wait for a batch before failing; 0 waits for ever", options.seconds)
    stall_s: float | None = option(None, "seconds without a batch (training or validation) after which each worker's "
                                         "Python stack and the dataset indices it is fetching are printed (with "
                                         "--num-workers 0, the main thread's stack) and the run stops with exit "
                                         "status 2, no worker left behind. Unlike --timeout, the DataLoader's own, "
                                         "which only raises 'DataLoader timed out' and only with workers, it shows "
                                         "where the loading is stuck. Default: off", options.positive_float)
    strict_data: bool = option(False, "decode every image before training and stop if any is bad "
                                      "(default: skip and warn)")
    progress: bool = option(True, "hide progress bars (they are hidden anyway when output goes to a file)")

    def __post_init__(self) -> None:
        self.checkpoint = self.checkpoint or None
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if value is None:
                continue
            try:
                if meta["check"] is not None:
                    setattr(self, f.name, meta["check"](value))
                elif meta["choices"] is not None and value not in meta["choices"]:
                    raise argparse.ArgumentTypeError(f"got {value!r}; accepted: {', '.join(meta['choices'])}")
            except argparse.ArgumentTypeError as exc:
                raise OptionError(f"{flag_of(f.name)}: {exc}") from None
        options.needs_workers(flag_of("prefetch_factor"), self.prefetch_factor, self.num_workers)
        if self.stall_s is not None:
            refuse_without_signals(flag_of("stall_s"))
        if self.checkpoint_every_steps and self.checkpoint is None:
            raise OptionError(f"--checkpoint-every-steps {self.checkpoint_every_steps} with --checkpoint '': there is "
                              f"no file to write; give --checkpoint FILE")
        if self.resume and self.checkpoint is None:
            raise OptionError("--resume with --checkpoint '': there is no file to resume from; give --checkpoint FILE")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig that the parsed options of TrainConfig's fields describe (helpers.app.cli's
    add_config_arguments makes them); raises OptionError for a bad combination."""
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
