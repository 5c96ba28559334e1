"""Phase 2c: a ridge readout refitted on the trained student's own whole-view statistics.

Why: in the recorded 562-photo folds, a ridge regression of MOS on the fine-tuned backbone's
whole-view statistics ranked unseen photos better than the head trained along with that
backbone, and averaging the two (standardised) kept most of that gain with the reference
branch still in the score (docs/results.md). The readout reads the numbers the global head
already reads, so it costs a score nothing: the network's
:class:`~cvrkd.model.LinearReadout` holds it as buffers.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from cvrkd.gallery import Gallery
from cvrkd.model import CVRKDNet, GlobalStatisticsHead
from cvrkd.train.finetune import Photos, SyntheticPixels, tuned_backbone, view_features, views_and_scores

ALPHAS = np.logspace(-2, 5, 29)


def ridge() -> Pipeline:
    """The ridge regression every probe and readout uses: standardised inputs, the penalty
    chosen by efficient leave-one-out CV on the training photos."""
    return make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS))


def with_readout(network: CVRKDNet, photos: Photos, gallery: Gallery, share: float,
                 replay: SyntheticPixels | None = None, synthetic_weight: float = 0.0) -> CVRKDNet:
    """A copy of ``network`` whose score is ``(1 - share)`` x its own standardised score plus
    ``share`` x a ridge readout's standardised prediction, both standardised over ``photos`` (the
    training photos, on which the ridge is fitted). With ``replay``, the synthetic images and
    their pseudo-labels join the fit with ``synthetic_weight`` x the photos' total weight."""
    if network.readout is not None:
        raise ValueError("the network already has a readout")
    if not 0 < share <= 1:
        raise ValueError(f"a readout share is in (0, 1], got {share}")
    views, scores = views_and_scores(network, photos.pixels, gallery)
    statistics = GlobalStatisticsHead.statistics(views).double().numpy()
    inputs, targets, weights = statistics, photos.mos, np.ones(len(photos))
    if replay is not None and synthetic_weight > 0:
        replayed = GlobalStatisticsHead.statistics(view_features(tuned_backbone(network), replay.images)[:, -1])
        inputs = np.vstack([statistics, replayed.double().numpy()])
        targets = np.concatenate([photos.mos, replay.labels])
        weights = np.concatenate([weights, np.full(len(replay), synthetic_weight * len(photos) / len(replay))])
    probe = ridge().fit(inputs, targets, standardscaler__sample_weight=weights, ridgecv__sample_weight=weights)
    fitted = probe.predict(statistics)
    scaler, regression = probe[0], probe[-1]
    slope = regression.coef_ / scaler.scale_
    intercept = regression.intercept_ - scaler.mean_ @ slope
    readout_scale = share / max(fitted.std(), 1e-6)
    mixed = CVRKDNet(replace(network.config, readout=True))
    missing, unexpected = mixed.load_state_dict(network.state_dict(), strict=False)
    if unexpected or any(not key.startswith("readout.") for key in missing):
        raise ValueError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        mixed.readout.weight.copy_(torch.from_numpy(slope * readout_scale))
        mixed.readout.bias.fill_(float((intercept - fitted.mean()) * readout_scale))
        mixed.readout.head_weight.fill_(float((1 - share) / max(scores.std(), 1e-6)))
        mixed.readout.head_center.fill_(float(scores.mean()))
    return mixed.eval()
