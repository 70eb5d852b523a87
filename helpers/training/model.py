"""The blog post's model done right: a pretrained, frozen ResNet18 whose backbone stays in eval mode, and a new head."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

OFFLINE_ENV = "HELPERS_OFFLINE"


class PretrainedWeightsUnavailable(UserWarning):
    """The ImageNet weights could not be had; the backbone is random and its features mean little."""


def imagenet_weights_path() -> Path:
    """Where torch's cache keeps ResNet18's ImageNet weights (TORCH_HOME moves it)."""
    return Path(torch.hub.get_dir(), "checkpoints", os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url))


def load_imagenet_weights() -> dict[str, torch.Tensor] | None:
    """ResNet18's ImageNet weights from torch's cache or the network; None (and one loud warning) when neither works."""
    weights = ResNet18_Weights.IMAGENET1K_V1
    cached = str(imagenet_weights_path())
    try:
        if os.path.exists(cached):
            return torch.load(cached, map_location="cpu", weights_only=True)
        if os.environ.get(OFFLINE_ENV):
            raise RuntimeError(f"{OFFLINE_ENV} is set, so no download was tried")
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # network, disk or a corrupt cache file: all end in the same fallback
        warnings.warn(
            f"\n{'!' * 78}\nImageNet weights for ResNet18 are unavailable ({type(exc).__name__}: {exc}).\n"
            f"Falling back to RANDOM backbone weights: training still runs and timings stay valid, but accuracy "
            f"comes from a linear head on random features.\nTo fix: run once with network access, or place "
            f"{os.path.basename(weights.url)} in {os.path.dirname(cached)}.\n{'!' * 78}",
            PretrainedWeightsUnavailable, stacklevel=2,
        )
        return None


class FrozenResNet18(nn.Module):
    """ResNet18 features, frozen, feeding a trainable head that outputs raw logits (CrossEntropyLoss does the softmax)."""

    def __init__(self, num_classes: int = 2, pretrained: bool = True, dropout: float = 0.5) -> None:
        super().__init__()
        self.backbone = resnet18()
        state = load_imagenet_weights() if pretrained else None
        if state is not None:
            self.backbone.load_state_dict(state)
        self.pretrained = state is not None
        in_features = self.backbone.fc.in_features
        self.backbone.fc = nn.Identity()
        self.backbone.requires_grad_(False)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))
        self.backbone.eval()

    def train(self, mode: bool = True) -> "FrozenResNet18":
        """Only the head follows mode: the frozen backbone's BatchNorm must keep its ImageNet statistics."""
        super().train(mode)
        self.backbone.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))


def build_model(num_classes: int = 2, pretrained: bool = True) -> FrozenResNet18:
    """The course's model; pretrained=False skips the weight lookup entirely (tests, timing-only runs)."""
    return FrozenResNet18(num_classes=num_classes, pretrained=pretrained)
