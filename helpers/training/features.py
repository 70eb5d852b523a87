"""Feature caching for the frozen backbone: run the backbone once per image, then train only the head on the cache.

Right only while every epoch would compute the same features: a frozen backbone in eval mode and a deterministic
transform. Random augmentation changes the input every epoch and an unfrozen backbone changes the features every
step; a cache would freeze both, silently.
"""
from __future__ import annotations

import hashlib
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .config import TrainConfig
from ..loading.data import index_image_folder
from ..files import atomic_write
from ..loading.loaders import Loaders
from .loop import EpochHooks, Pass, batches, run_epochs
from .model import FrozenResNet18, build_model
from .fit import fit_once, seed_of
from ..loading.transforms import Pipeline, build_pipeline

CACHE_VERSION = 1


@dataclass
class Features:
    """One split's backbone outputs: features[i] came from paths[i], whose class is labels[i]."""

    features: torch.Tensor  # (N, 512) float32, on the CPU
    labels: torch.Tensor    # (N,) int64
    paths: list[str]


@dataclass
class CachedRun:
    history: dict[str, list]
    build_seconds: float   # extracting both splits' features once (or 0 when read back from disk)
    from_disk: bool


def cache_key(config: TrainConfig, paths: list[str], pretrained: bool) -> str:
    """What the features depend on: the files (name, size, mtime), the image pipeline and size, and the weights."""
    h = hashlib.sha256(f"v{CACHE_VERSION} {config.pipeline} {config.image_size} {config.seed} "
                       f"{config.val_fraction} pretrained={pretrained}".encode())
    for path in paths:
        st = os.stat(path)
        h.update(f"{path} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()


@torch.inference_mode()
def extract_features(model: FrozenResNet18, loader: DataLoader, device: torch.device, *, pipeline: Pipeline,
                     progress: bool = True, desc: str = "features") -> Features:
    """The backbone's output for every image the loader yields, in order; unreadable files are skipped and named."""
    model.eval()
    feats, labels, seen = [], [], Pass()
    for _, (images, targets) in batches(loader, seen, desc=desc, progress=progress):
        feats.append(model.backbone(pipeline.to_model_input(images, device)).float().cpu())
        labels.append(targets)
    bad = set(seen.skipped.reasons)
    paths = [s.path for s in loader.dataset.samples if s.path not in bad]
    return Features(torch.cat(feats), torch.cat(labels), paths)


def build_cache(config: TrainConfig, loaders: Loaders, model: FrozenResNet18, cache: str | Path | None = None,
                log=print) -> tuple[Features, Features, float, bool]:
    """Features for both splits of LOADERS, read from CACHE when it matches this data and model, else computed (and
    saved); each split in file order through the validation transform, so each image has exactly one feature vector."""
    train_loader, val_loader = loaders.in_file_order()
    key = cache_key(config, sorted(s.path for split in (loaders.train, loaders.val) for s in split.dataset.samples),
                    model.pretrained)
    path = Path(cache) if cache else None
    if path is not None and path.exists():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated by a crash, or not a cache at all: it is rebuilt, so nothing is lost
            state = {}
            log(f"{path} could not be read ({type(exc).__name__}); computing the features again and replacing it.")
        if isinstance(state, dict) and state.get("key") == key:
            log(f"Features read from {path}.")
            return Features(**state["train"]), Features(**state["val"]), 0.0, True
        if state:
            log(f"{path} was made from other files, settings or weights; computing the features again.")
    start = time.perf_counter()
    model = model.to(loaders.device)
    run = dict(pipeline=loaders.val_pipeline, progress=config.progress)
    train = extract_features(model, train_loader, loaders.device, desc="features, train", **run)
    val = extract_features(model, val_loader, loaders.device, desc="features, val", **run)
    seconds = time.perf_counter() - start
    if path is not None:
        atomic_write(path, lambda f: torch.save(dict(key=key, train=asdict(train), val=asdict(val)), f))
    log(f"Features of {len(train.labels)} train and {len(val.labels)} val images computed in {seconds:.1f}s"
        + (f" and saved to {path}." if path is not None else "."))
    return train, val, seconds, False


def _feature_loader(features: Features, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """Features are already tensors in memory: no workers, no decoding, just a seeded shuffle."""
    return DataLoader(TensorDataset(features.features, features.labels), batch_size=batch_size, shuffle=shuffle,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None)


def fit_cached(config: TrainConfig, loaders: Loaders, cache: str | Path | None = None, log=print) -> CachedRun:
    """Train the same head as fit() with the same optimizer, on cached backbone features of LOADERS' images."""
    torch.manual_seed(config.seed)
    if config.pipeline == "standard":
        log("Note: the cache uses the validation transform; the training split loses its random augmentation.")
    model = build_model(len(loaders.classes), pretrained=config.pretrained)
    train, val, build_seconds, from_disk = build_cache(config, loaders, model, cache, log)
    head = model.head.to(loaders.device)
    optimizer = torch.optim.Adam(head.parameters(), lr=config.lr)
    hooks = EpochHooks(seed_of=seed_of(config), note=lambda seconds: f"  (cached features: {1000 * seconds:.1f} ms)")
    history = run_epochs(head, (_feature_loader(train, config.batch_size, True, config.seed),
                                _feature_loader(val, config.batch_size, False, config.seed)),
                         nn.CrossEntropyLoss(), optimizer, loaders.device, epochs=config.epochs, progress=False,
                         log=log, hooks=hooks)
    return CachedRun(history, build_seconds, from_disk)


COMPARE_COLUMNS = (("method", "method", "s"), ("epochs", "epochs", "d"), ("build_s", "build s", ".2f"),
                   ("epoch_s", "s/epoch", ".3f"), ("total_s", "total s", ".1f"), ("val_acc", "val acc %", ".1f"))


def compare(config: TrainConfig, loaders: Loaders, cache: str | Path | None = None, log=print) -> list[dict]:
    """The same head trained on the same split from images through LOADERS and from cached features: each epoch's
    seconds, their median, and accuracy (no checkpoints: the run is a measurement)."""
    loader_fed = fit_once(config, loaders, log)
    cached = fit_cached(config, loaders, cache, log)
    rows = []
    for name, history, build in (("loader-fed", loader_fed, 0.0), ("cached features", cached.history,
                                                                   cached.build_seconds)):
        rows.append(dict(method=name, epochs=len(history["epoch"]), build_s=build, seconds=list(history["seconds"]),
                         epoch_s=statistics.median(history["seconds"]), total_s=build + sum(history["seconds"]),
                         val_acc=history["val_acc"][-1], val_loss=history["val_loss"][-1]))
    rows.append(dict(method="speed-up per epoch", epochs=None, build_s=None, seconds=None,
                     epoch_s=rows[0]["epoch_s"] / rows[1]["epoch_s"], total_s=rows[0]["total_s"] / rows[1]["total_s"],
                     val_acc=None, val_loss=None))
    return rows


@torch.no_grad()
def why_not_cache(data: str | Path, image_size: int = 128, images: int = 8, seed: int = 0,
                  pretrained: bool = True) -> list[dict]:
    """How far the same images' features move between two epochs in three set-ups; a cache is right only at 0."""
    index = index_image_folder(data)
    samples = index.samples[:images]
    torch.manual_seed(seed)
    model = build_model(len(index.classes), pretrained=pretrained).eval()
    augmented, plain = (build_pipeline("standard", image_size, train=t) for t in (True, False))

    def batch(pipe) -> torch.Tensor:
        return torch.stack([pipe.transform(pipe.loader(s.path)) for s in samples])

    def moved(first: torch.Tensor, second: torch.Tensor) -> float:
        return ((first - second).norm() / first.norm()).item()

    rows = [dict(case="validation transform, frozen backbone",
                 change=moved(model.backbone(batch(plain)), model.backbone(batch(plain)))),
            dict(case="random augmentation (RandomResizedCrop, flip)",
                 change=moved(model.backbone(batch(augmented)), model.backbone(batch(augmented))))]
    images, labels = batch(plain), torch.tensor([s.label for s in samples])
    before = model.backbone(images)
    model.backbone.layer4.requires_grad_(True)
    optimizer = torch.optim.SGD(model.backbone.layer4.parameters(), lr=0.01)
    with torch.enable_grad():
        nn.functional.cross_entropy(model(images), labels).backward()
    optimizer.step()
    rows.append(dict(case="one optimizer step with layer4 unfrozen", change=moved(before, model.backbone(images))))
    return rows
