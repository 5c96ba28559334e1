"""CVRKDNet.score_references: one image against K references gives the same scores as the
network run on K copies of the image (the LQ branch and the view statistics run once)."""
from __future__ import annotations

import pytest
import torch

from cvrkd.model import CVRKDNet, ModelConfig

CONFIGS = {
    "shipped layout: whole view, global head reading the branches": ModelConfig(
        num_patches=1, global_head=16, head_reads_branches=True, calibration=(80.0, -3.0, -10.0, 12.0)),
    "patches, no global head": ModelConfig(num_patches=3),
    "global head on statistics only": ModelConfig(num_patches=2, global_head=16),
    "NR-only (no reference branch)": ModelConfig(num_patches=2, use_reference=False, global_head=16),
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_score_references_equals_forward_on_copies(config):
    torch.manual_seed(0)
    network = CVRKDNet(config).eval()
    with torch.no_grad():  # a trained-looking mix, so the mixers' score matters
        if network.mix is not None:
            network.mix.fill_(0.7)
    views = config.num_patches
    lq = torch.rand(views, sum(config.stage_channels), 7, 7) * 3
    references = torch.rand(5, views, sum(config.stage_channels), 7, 7) * 3
    with torch.inference_mode():
        expected = network.calibrate(network(lq.expand(5, *lq.shape), references).score)
        got = network.score_references(lq, references)
    assert got.shape == (5,)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    if config.use_reference:  # the references still matter
        assert float(got.std()) > 0
