"""What a training run does, as one composed config: the phases of the one pipeline.

A :class:`Recipe` is the synthetic phase (FR teacher, then the CVRKD student's token mixers on
distorted Kodak photos, distilled from the teacher), the human phase (a global head on frozen
features, then optionally fine-tuning end to end through the backbone on the labelled photos,
then optionally a ridge readout refitted on the tuned features) and, for re-distillation, crowd
rounds (:class:`cvrkd.train.redistill.RedistillConfig`, which overlays the same
:class:`~cvrkd.train.finetune.FinetuneConfig`). Variants are ``dataclasses.replace`` overlays of
one base, never copies, so a row of the CV table differs from the shipped recipe in exactly the
fields it names.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

from cvrkd.train.finetune import FinetuneConfig
from cvrkd.train.global_head import HeadConfig


@dataclass(frozen=True)
class SyntheticPhase:
    """Phase 1: never sees a human-rated photo, so one run serves every fold."""

    teacher_epochs: int = 8
    student_epochs: int = 6
    """Epochs of the student's token mixers (the best synthetic-validation epoch is kept)."""
    distill_weight: float = 0.1
    use_reference: bool = True
    """False: the NR-only ablation (no reference-difference branch)."""

    @property
    def name(self) -> str:
        """The stage-1 network this phase trains (its folder in the work directory)."""
        if not self.use_reference:
            return "nr-only"
        return "student" if self.distill_weight else "no-distillation"


@dataclass(frozen=True)
class Recipe:
    synthetic: SyntheticPhase = SyntheticPhase()
    head: HeadConfig = HeadConfig(synthetic_weight=0.03)
    """Phase 2a: the global head on frozen features (the synthetic-pair weight keeps the synthetic
    ranking; 0.03 was chosen by the 300-photo CV)."""
    finetune: FinetuneConfig | None = None
    """Phase 2b: end to end through the backbone's last ``tuned_stages`` stages; None stops at 2a."""
    seed: int = 0
    readout_share: float = 0.0
    """Phase 2c (:mod:`cvrkd.train.readout`): the share of a ridge readout on the trained
    student's whole-view statistics in its score (0 = none; 1 = the readout alone, an NR score)."""
    readout_synthetic_weight: float = 0.0
    """The synthetic training images' total weight in the readout's fit, as a share of the
    labelled photos' (0 = photos only): replay, so the readout learns synthetic distortions too."""
    test_flips: bool = False
    """Score each photo and its mirror image and average the two (test-time augmentation: two
    backbone passes a score). A CV row only: the app scores one view."""

    def to_dict(self) -> dict:
        return asdict(self)

    def key(self) -> str:
        """Names a run folder: results of other settings are never read as this recipe's. Phase-2c
        settings and test-time flips at their defaults are left out, so runs recorded before they
        existed stay valid."""
        settings = self.to_dict()
        for name in ("readout_share", "readout_synthetic_weight", "test_flips"):
            if not settings[name]:
                del settings[name]
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]

    @property
    def servable(self) -> bool:
        """Whether a model of this recipe scores as the app does (one view per score)."""
        return not self.test_flips

    def trained(self) -> "Recipe":
        """The settings that decide phase 2b's run: the WiSE-FT share, the readout and test-time
        flips only use its result, so rows that differ in those alone share one run."""
        return replace(self, finetune=self.finetune.trained(), readout_share=0.0, readout_synthetic_weight=0.0,
                       test_flips=False)


FROZEN = Recipe()
"""The student shipped until 2026-12: phases 1 and 2a, backbone frozen (the CV reference row)."""
FINETUNED = replace(FROZEN, finetune=FinetuneConfig(tuned_stages=7))
"""Phase 2b through the whole backbone (Lite0's 7 stages; the stem stays ImageNet's)."""


def wise(share: float) -> Recipe:
    """The fine-tuned student's weights mixed with its start's (WiSE-FT): one training run for
    every share."""
    return replace(FINETUNED, finetune=replace(FINETUNED.finetune, tuned_share=share))


def with_readout(share: float, synthetic_weight: float = 0.0) -> Recipe:
    """The fine-tuned student with a ridge readout refitted on its own features (phase 2c)."""
    return replace(FINETUNED, readout_share=share, readout_synthetic_weight=synthetic_weight)


ALL_STAGES = "fine-tuned student + readout 0.4"
"""The recipe shipped until 2026-12-07: phase 2b through all 7 stages."""
_ALL_STAGES = with_readout(0.4)
SHIPPED = f"{ALL_STAGES}, last 5 stages"
"""The recipe of the model in ``cvrkd/weights`` (and ``train model``'s default): phase 2b through the
backbone's last 5 stages, which ranks photos as the 7-stage recipe does at 0.6 of its step cost."""
_SHIPPED = replace(_ALL_STAGES, finetune=replace(_ALL_STAGES.finetune, tuned_stages=5))


def ablations(name: str, base: Recipe) -> dict[str, Recipe]:
    """The NR-only and no-distillation rows of a recipe: each changes one phase-1 setting (and its phase 2b)."""
    return {
        f"{name}, NR-only": replace(base, synthetic=replace(base.synthetic, use_reference=False)),
        f"{name}, without distillation": replace(
            base, synthetic=replace(base.synthetic, distill_weight=0.0),
            finetune=replace(base.finetune, distill_weight=0.0)),
    }


RECIPES: dict[str, Recipe] = {
    "frozen student": FROZEN,
    "fine-tuned student": FINETUNED,
    SHIPPED: _SHIPPED,
    **ablations(SHIPPED, _SHIPPED),
    f"{SHIPPED}, test-time flips": replace(_SHIPPED, test_flips=True),
    f"{SHIPPED}, lr 2e-4": replace(_SHIPPED, finetune=replace(_SHIPPED.finetune, lr_backbone=2e-4, lr_mixers=2e-4)),
    ALL_STAGES: _ALL_STAGES,
    **ablations(ALL_STAGES, _ALL_STAGES),
    "fine-tuned student + readout 0.3": with_readout(0.3),
    "fine-tuned student + readout 0.5": with_readout(0.5),
    # a cheaper phase 2b (the CV of the shipped recipe is to take at most an hour)
    f"{ALL_STAGES}, 5 epochs": replace(_ALL_STAGES, finetune=replace(_ALL_STAGES.finetune, epochs=5)),
    "fine-tuned backbone, readout alone (NR)": with_readout(1.0),
    "fine-tuned student + readout 0.5 with synthetic replay": with_readout(0.5, synthetic_weight=0.25),
    "fine-tuned student, WiSE-FT 0.5": wise(0.5),
    "fine-tuned student, WiSE-FT 0.3": wise(0.3),
    "fine-tuned student, WiSE-FT 0.7": wise(0.7),
    # the shipped recipe's other fine-tuning families: depth, crop, and a second training seed
    f"{ALL_STAGES}, last 4 stages": replace(_SHIPPED, finetune=replace(_SHIPPED.finetune, tuned_stages=4)),
    f"{SHIPPED}, crop 384": replace(_SHIPPED, finetune=replace(_SHIPPED.finetune, crop=384)),
    f"{SHIPPED}, seed 1": replace(_SHIPPED, seed=1, finetune=replace(_SHIPPED.finetune, seed=1)),
}
REFERENCE = "frozen student"
"""The CV table's reference row: every difference is measured against it."""
CANDIDATE = SHIPPED
"""The recipe being cross-validated against the reference (``evaluate --cv``'s default rows)."""


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose from {sorted(RECIPES)}")
    return RECIPES[name]
