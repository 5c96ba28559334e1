"""Phase 2c: a ridge readout refitted on the trained student's own whole-view statistics.

Why: in the recorded 562-photo folds, a ridge regression of MOS on the fine-tuned backbone's
whole-view statistics ranked unseen photos better than the head trained along with that
backbone, and averaging the two (standardised) kept most of that gain with the reference
branch still in the score (docs/results.md). The readout reads the numbers the global head
already reads, so it costs a score nothing: the network's
:class:`~cvrkd.model.LinearReadout` holds it as buffers.

The readout also keeps what it was fitted on: the photos' statistics and MOS, not the photos
(which may not be redistributed). A crowd round (:func:`refit_readout`) fits it again on
those and on people's judgements of new photos together, so what the model knew stays in the
fit instead of being replayed.
"""
from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from cvrkd.gallery import Gallery
from cvrkd.model import CVRKDNet, GlobalStatisticsHead
from cvrkd.train.finetune import Photos, SyntheticPixels, tuned_backbone, view_features, views_and_scores
from cvrkd.train.pairwise import CARELESS, OBSERVER_SCALE, PairLabels

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
    scaler, regression = probe[0], probe[-1]
    slope = regression.coef_ / scaler.scale_
    intercept = regression.intercept_ - scaler.mean_ @ slope
    mixed = CVRKDNet(replace(network.config, readout=True, readout_memory=len(photos)))
    missing, unexpected = mixed.load_state_dict(network.state_dict(), strict=False)
    if unexpected or any(not key.startswith("readout.") for key in missing):
        raise ValueError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        mixed.readout.head_weight.fill_(float((1 - share) / max(scores.std(), 1e-6)))
        mixed.readout.head_center.fill_(float(scores.mean()))
        mixed.readout.memory_statistics.copy_(torch.from_numpy(statistics))
        mixed.readout.memory_mos.copy_(torch.from_numpy(np.asarray(photos.mos, float)))
    _set_ridge(mixed, slope, intercept, share)
    return mixed.eval()


def _set_ridge(network: CVRKDNet, slope: np.ndarray, intercept: float, share: float) -> None:
    """The readout's part of the score: ``share`` x the ridge's prediction (MOS units) standardised
    over the photos it keeps."""
    fitted = network.readout.memory_statistics.double().numpy() @ slope + intercept
    scale = share / max(fitted.std(), 1e-6)
    with torch.no_grad():
        network.readout.weight.copy_(torch.from_numpy(slope * scale))
        network.readout.bias.fill_(float((intercept - fitted.mean()) * scale))


def readout_share(network: CVRKDNet) -> float:
    """The readout's share of the score: the spread of its part over the photos it keeps."""
    readout = network.readout
    return float((readout.memory_statistics.double() @ readout.weight.double() + readout.bias).std(unbiased=False))


def refit_readout(network: CVRKDNet, statistics: np.ndarray, pairs: PairLabels, careless: float = CARELESS,
                  anchors: np.ndarray | None = None, anchor_weight: float = 0.0) -> CVRKDNet:
    """A copy of ``network`` whose readout is fitted again on the photos it keeps (their MOS) and on
    people's judgements ``pairs`` over new photos (their whole-view ``statistics``, through this
    network's backbone) together. Nothing else changes, so the backbone, the head and the
    share stay as they are.

    The fit maximises one likelihood: each kept photo's MOS is Gaussian around the ridge's
    prediction (its spread and penalty are the ridge's own, chosen by leave-one-out on the kept
    photos), and each judgement is a Thurstone observer's answer on the predictions (observer
    noise ``OBSERVER_SCALE``; a ``careless`` share of answers is random).

    ``anchors``: whole-view statistics of images the kept photos do not cover (replayed synthetic
    distortions); each is a Gaussian observation of what the kept photos' ridge predicts for it,
    ``anchor_weight`` x the kept photos' weight in all. The new photos then move the readout only
    where it leaves the ranking of distortions as it was: the round distils the base's own
    scores instead of forgetting them."""
    readout = network.readout
    if readout is None or not hasattr(readout, "memory_mos"):
        raise ValueError("the network keeps no readout memory (it was trained before crowd rounds refit it)")
    kept = readout.memory_statistics.double().numpy()
    mos = readout.memory_mos.double().numpy()
    probe = ridge().set_params(ridgecv__store_cv_results=True).fit(kept, mos)
    scaler, regression = probe[0], probe[-1]
    alpha = float(regression.alpha_)
    noise = float(regression.cv_results_[:, list(ALPHAS).index(alpha)].mean())  # leave-one-out squared error
    center, spread = scaler.mean_, scaler.scale_
    kept_z = torch.from_numpy((kept - center) / spread)
    anchors = np.zeros((0, kept.shape[1])) if anchors is None or anchor_weight <= 0 else np.asarray(anchors, float)
    anchor_z = torch.from_numpy((anchors - center) / spread)
    anchor_targets = torch.from_numpy(probe.predict(anchors) if len(anchors) else np.zeros(0))
    anchor_each = anchor_weight * len(kept) / max(len(anchors), 1)
    new_z = torch.from_numpy((np.asarray(statistics, float) - center) / spread)
    targets = torch.from_numpy(mos)
    coef = torch.from_numpy(regression.coef_.copy()).requires_grad_(True)
    bias = torch.tensor(float(regression.intercept_), dtype=torch.float64, requires_grad=True)
    first, second = pairs.first.long(), pairs.second.long()
    prob, weight = pairs.prob.double(), pairs.weight.double()
    solver = torch.optim.LBFGS([coef, bias], max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        solver.zero_grad()
        predicted = new_z @ coef + bias
        agree = careless / 2 + (1 - careless) * torch.special.ndtr((predicted[first] - predicted[second])
                                                                    / OBSERVER_SCALE)
        answers = -(weight * (prob * torch.log(agree) + (1 - prob) * torch.log1p(-agree))).sum()
        squared = ((kept_z @ coef + bias - targets) ** 2).sum() \
            + anchor_each * ((anchor_z @ coef + bias - anchor_targets) ** 2).sum()
        total = (squared + alpha * (coef ** 2).sum()) / (2 * noise) + answers
        total.backward()
        return total

    solver.step(loss)
    refitted = copy.deepcopy(network)
    slope = coef.detach().numpy() / spread
    _set_ridge(refitted, slope, float(bias.detach()) - center @ slope, readout_share(network))
    return refitted.eval()


def readout_statistics(network: CVRKDNet, images: list[np.ndarray], gallery: Gallery) -> np.ndarray:
    """[N, 2C] the whole-view statistics the readout reads, through ``network``'s own backbone."""
    views, _ = views_and_scores(network, images, gallery)
    return GlobalStatisticsHead.statistics(views).double().numpy()
