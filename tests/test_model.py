import warnings

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from helpers.training.model import PretrainedWeightsUnavailable, build_model


def test_backbone_frozen_head_trainable():
    model = build_model(pretrained=False)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert model.head[-1].out_features == 2


def test_head_outputs_logits_not_log_probabilities():
    """The loss applies log-softmax once; the model must not apply it as well."""
    model = build_model(pretrained=False).eval()
    assert not any(isinstance(m, (nn.LogSoftmax, nn.Softmax)) for m in model.modules())
    with torch.no_grad():
        logits = model(torch.randn(3, 3, 64, 64))
    assert not torch.allclose(logits.exp().sum(1), torch.ones(3), atol=1e-3)


def test_train_mode_leaves_the_frozen_backbone_in_eval():
    model = build_model(pretrained=False).train()
    assert model.training and model.head.training
    assert not any(m.training for m in model.backbone.modules())


def test_offline_falls_back_to_random_weights_with_one_loud_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.warns(PretrainedWeightsUnavailable, match="RANDOM backbone weights") as record:
        model = build_model(pretrained=True)
    assert len(record) == 1 and not model.pretrained


def test_cached_imagenet_weights_are_loaded_without_network(monkeypatch, tmp_path):
    """Where the weights are in torch's cache they are used: here a stand-in file with known values."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = resnet18().state_dict()
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(reference, tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PretrainedWeightsUnavailable)
        model = build_model(pretrained=True)
    assert model.pretrained
    assert torch.equal(model.backbone.conv1.weight, reference["conv1.weight"])
