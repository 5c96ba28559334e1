import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from cvrkd.backbone import FrozenBackbone, available_backbones, create_classifier

ESPRESSO = 967  # ImageNet class index


def test_bundled_weights_are_real_imagenet_weights(monkeypatch):
    """The coffee photo is classified as espresso, with no network access at all."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    model = create_classifier("lite0")
    image = np.asarray(Image.fromarray(data.coffee()).resize((224, 224), Image.Resampling.BICUBIC))
    x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        probabilities = model((x - 0.5) / 0.5).softmax(dim=1)[0]
    assert int(probabilities.argmax()) == ESPRESSO
    assert float(probabilities[ESPRESSO]) > 0.5


def test_feature_stages_have_the_documented_strides_and_channels():
    backbone = FrozenBackbone("lite0")
    maps = backbone(torch.rand(2, 3, 224, 224))
    assert backbone.channels == (24, 40, 112, 320)
    assert [m.shape[-1] for m in maps] == [56, 28, 14, 7]  # strides 4, 8, 16, 32
    assert [m.shape[1] for m in maps] == list(backbone.channels)


def test_backbone_is_frozen_and_stays_in_eval_mode():
    backbone = FrozenBackbone("lite0").train()
    assert not backbone.training and not backbone.features.training
    assert not any(p.requires_grad for p in backbone.parameters())


def test_other_backbones_are_selectable_and_unknown_ones_refused():
    assert {"lite0", "resnet50"} <= set(available_backbones())
    resnet = FrozenBackbone("resnet50", pretrained=False)
    assert resnet.channels == (256, 512, 1024, 2048)
    with pytest.raises(RuntimeError, match="no offline ImageNet weights"):
        FrozenBackbone("resnet50", pretrained=True)
    with pytest.raises(ValueError, match="unknown backbone"):
        FrozenBackbone("vgg-nonexistent")
