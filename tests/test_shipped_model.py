"""The shipped checkpoints load, and their accuracy stays above stated floors on images the
model never trained on (measured by scripts/shipped_model_checks.py; floors = measured minus
a margin). The shipped student never trained on clive_dev, so a clive subset is fair too."""
import pytest
from scipy.stats import spearmanr

from cvrkd import paths
from cvrkd.scorer import Scorer
from cvrkd.train.distortions import distort
from cvrkd.train.pseudolabels import pseudo_label
from image_factory import photo

TYPES = ("gaussian_blur", "jpeg", "white_noise", "contrast_change")
UNSEEN_KODAK = ("kodim13.png", "kodim17.png")  # never trained on (train 01-12, validation 21-24)
SYNTHETIC_FLOOR = 0.70  # student, distorted versions of one photo vs FR pseudo-labels
KODAK_FLOOR = 0.40  # student, distortions of unseen Kodak photos vs FR pseudo-labels (measured 0.539)
DAMAGE_MARGIN = 10.0  # points a heavily blurred / JPEG-crushed copy scores below the photo (measured 27.3, 15.4)
CLIVE_FLOOR = 0.20  # student, first 40 clive_dev images vs human MOS (never trained on)


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


@pytest.mark.parametrize("damage", ["gaussian_blur", "jpeg"])
def test_blurred_or_jpeg_crushed_photo_scores_clearly_below_the_photo(shipped_scorer, damage):
    pristine = photo(448, 384)
    original = shipped_scorer.score(pristine).score
    damaged = shipped_scorer.score(distort(pristine, damage, 5, seed=1)).score
    assert original - damaged >= DAMAGE_MARGIN, (original, damaged)


def test_student_on_distortions_of_unseen_kodak_photos(shipped_scorer, shared_data):
    from cvrkd.imageio import load_image

    student, labels = [], []
    for name in UNSEEN_KODAK:
        pristine = load_image(shared_data / "kodak24" / name).pixels
        for damage in TYPES:
            for level in (1, 3, 5):
                image = distort(pristine, damage, level, seed=2)
                labels.append(pseudo_label(pristine, image))
                student.append(shipped_scorer.score(image).score)
    assert spearmanr(student, labels).statistic >= KODAK_FLOOR


def test_student_on_a_fixed_clive_subset(shipped_scorer, shared_data):
    from cvrkd.evaluation import read_scores_csv

    rows = read_scores_csv(shared_data / "clive_dev" / "clive_dev.csv")[:40]
    predicted = [shipped_scorer.score(path).score for path, _ in rows]
    assert spearmanr(predicted, [mos for _, mos in rows]).statistic >= CLIVE_FLOOR
