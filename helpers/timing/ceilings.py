"""What bounds a loader's throughput: one core running the whole pipeline, and the model's own training step."""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn

from ..loading.data import ImageDataset, collate_skipping_bad
from ..training.loop import model_and_optimizer, train_step
from ..machine import one_thread
from ..loading.transforms import Pipeline


def one_core_throughput(dataset: ImageDataset, batch_size: int, seconds: float = 2.0) -> float:
    """Images per second for the whole per-image pipeline plus collate, in this process on one thread."""
    with one_thread():
        collate_skipping_bad([dataset[k % len(dataset)] for k in range(batch_size)])  # warm-up, not timed
        images, start, i = 0, time.perf_counter(), batch_size
        while time.perf_counter() - start < seconds or images < batch_size:
            batch = collate_skipping_bad([dataset[(i + k) % len(dataset)] for k in range(batch_size)])
            images += len(batch[1]) if batch else 0
            i += batch_size
        return images / (time.perf_counter() - start)


class TrainingStep:
    """The frozen ResNet18's training step, for end-to-end timing; synchronizes so each step's time is its own."""

    def __init__(self, device: torch.device, pipeline: Pipeline, pretrained: bool = False) -> None:
        self.device, self.pipeline = device, pipeline
        self.model, self.optimizer = model_and_optimizer(2, device, lr=1e-3, pretrained=pretrained)
        self.model.train()
        self.criterion = nn.CrossEntropyLoss()

    def __call__(self, batch) -> None:
        images, labels = batch
        train_step(self.model, images, labels, self.criterion, self.optimizer, self.device,
                   self.pipeline.to_model_input)
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def throughput_on_device(self, batch, steps: int = 10, min_seconds: float = 1.0) -> float:
        """The model's own ceiling: images per second on one batch already on the device, over STEPS and MIN_SECONDS.

        Ten steps of a few milliseconds on a GPU read 858 images/s where the loader-fed model reached 1052 (H200,
        batch 4): too short for clocks and caches to settle, so the ceiling is timed for at least MIN_SECONDS.
        """
        images, labels = batch
        images = images.to(self.device) if isinstance(images, torch.Tensor) else [i.to(self.device) for i in images]
        labels = labels.to(self.device)
        for _ in range(3):
            self((images, labels))
        done, start = 0, time.perf_counter()
        while done < steps or time.perf_counter() - start < min_seconds:
            self((images, labels))
            done += 1
        return done * len(labels) / (time.perf_counter() - start)


def synchronized_step(step: Callable, device: torch.device) -> Callable:
    """STEP, made to wait for DEVICE's queued kernels on CUDA, so the time of a step includes them."""
    if device.type != "cuda":
        return step

    def synchronized(batch):
        out = step(batch)
        torch.cuda.synchronize(device)
        return out
    return synchronized
