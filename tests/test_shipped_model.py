"""The shipped checkpoints load, and their accuracy stays above stated floors."""
import pytest
from scipy.stats import spearmanr

from cvrkd import paths
from cvrkd.train.distortions import distort
from cvrkd.evaluation import read_scores_csv
from cvrkd.train.pseudolabels import pseudo_label
from cvrkd.scorer import Scorer
from image_factory import photo

TYPES = ("gaussian_blur", "jpeg", "white_noise", "contrast_change")
SYNTHETIC_FLOOR = 0.70  # student, distorted versions of one photo vs FR pseudo-labels
CLIVE_FLOOR = 0.20  # student, first 40 clive_dev images vs human MOS (cross-domain)


@pytest.fixture(scope="module")
def shipped_scorer(data_dir):
    scorer = Scorer(paths.default_model_dir(), cache_dir=data_dir / "cache")
    assert scorer.student.info.trained and scorer.has_teacher
    return scorer


def test_shipped_bundle_records_its_training(shipped_scorer):
    for loaded in (shipped_scorer.student, shipped_scorer.teacher):
        assert loaded.info.backbone == "lite0" and loaded.info.trained
        assert loaded.info.extra["training"]["epochs"] >= 1


def test_student_ranks_synthetic_distortions_of_an_unseen_photo(shipped_scorer):
    pristine = photo(448, 384)
    images = [distort(pristine, name, level, seed=1) for name in TYPES for level in (1, 3, 5)]
    labels = [pseudo_label(pristine, image) for image in images]
    student = [shipped_scorer.score(image).score for image in images]
    teacher = [shipped_scorer.score(image, reference=pristine).score for image in images]
    assert spearmanr(student, labels).statistic >= SYNTHETIC_FLOOR
    assert spearmanr(teacher, labels).statistic >= spearmanr(student, labels).statistic - 0.1


def test_student_on_a_fixed_clive_subset(shipped_scorer, shared_data):
    rows = read_scores_csv(shared_data / "clive_dev" / "clive_dev.csv")[:40]
    predicted = [shipped_scorer.score(path).score for path, _ in rows]
    assert spearmanr(predicted, [mos for _, mos in rows]).statistic >= CLIVE_FLOOR
