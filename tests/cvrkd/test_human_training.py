"""Human-label training: the pair labels and loss that MOS sets and crowd judgements share,
the recorded cross-validation folds, and the scoring path's independence from training code."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cvrkd.train.pairwise import fidelity_loss, judgement_pairs, mos_pairs

ROOT = Path(__file__).resolve().parents[2]


def test_train_and_test_rows_of_a_fold_are_disjoint_in_the_pair_labels():
    mos = np.linspace(10, 90, 20)
    pairs = mos_pairs(mos)
    train = torch.arange(0, 15)
    inside = pairs.among(train)
    assert len(inside) == 15 * 14 // 2
    assert int(inside.first.max()) < 15 and int(inside.second.max()) < 15


def test_mos_pairs_follow_thurstone():
    pairs = mos_pairs(np.array([50.0, 50.0, 80.0]), np.array([10.0, 10.0, 10.0]))
    probs = {(int(a), int(b)): float(p) for a, b, p in zip(pairs.first, pairs.second, pairs.prob)}
    assert probs[(0, 1)] == pytest.approx(0.5)
    assert probs[(0, 2)] < 0.05 and probs[(1, 2)] < 0.05


def test_fidelity_loss_rewards_the_right_order_for_both_kinds_of_label():
    mos = mos_pairs(np.array([20.0, 80.0]))
    crowd = judgement_pairs(np.array([0]), np.array([1]), ["right"])
    for labels in (mos, crowd):
        right = fidelity_loss(torch.tensor([20.0]), torch.tensor([80.0]), labels.prob, labels.weight)
        wrong = fidelity_loss(torch.tensor([80.0]), torch.tensor([20.0]), labels.prob, labels.weight)
        assert right < 0.1 < wrong


def test_scoring_never_imports_the_training_package(tmp_path):
    code = (
        "import sys\n"
        "from cvrkd.scorer import Scorer\n"
        "from cvrkd.checkpoint import untrained, save_checkpoint\n"
        f"folder = {str(tmp_path)!r}\n"
        "for role in ('teacher', 'student'):\n"
        "    net, info = untrained(role, seed=1)\n"
        "    save_checkpoint(net, info, folder + '/' + role)\n"
        "import numpy as np\n"
        "pixels = (np.random.default_rng(0).random((240, 300, 3)) * 255).astype('uint8')\n"
        "Scorer(folder, allow_untrained=True, backend='torch', cache_dir=folder + '/cache').score(pixels)\n"
        "loaded = [m for m in sys.modules if m.startswith('cvrkd.train')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=600,
                   env={"CVRKD_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"})
