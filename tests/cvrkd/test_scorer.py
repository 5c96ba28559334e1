import json
import subprocess
import sys

import pytest

from cvrkd.imageio import InvalidImageError
from cvrkd.scorer import NoTrainedModelError, Scorer
from tests.helpers.images import photo

from tests.helpers import ROOT


def test_result_carries_score_spread_references_and_version(scorer):
    result = scorer.score(photo(), name="astronaut-small")
    low, high = Scorer.score_range
    assert Scorer.lower_better is False and (low, high) == (0.0, 100.0)
    assert low <= result.score <= high and result.mode == "nar"
    assert len(result.per_reference) == len(scorer.default_gallery()) >= 5
    assert result.spread >= 0 and result.model_version == scorer.model_version
    assert result.elapsed_s > 0 and result.image == "astronaut-small"
    mean = sum(r.score for r in result.per_reference) / len(result.per_reference)
    assert result.score == pytest.approx(mean)


def test_same_image_same_score_on_repeated_calls(scorer):
    scores = {scorer.score(photo()).score for _ in range(3)}
    assert len(scores) == 1


def test_a_new_image_size_scores_the_same_from_its_first_call(scorer):
    """The fast runtime must not change its arithmetic once a size has been seen (e.g. a
    session specialised for it): the first score is the score."""
    image = photo(333, 277)  # a size no other test uses
    assert len({scorer.score(image).score for _ in range(3)}) == 1


def test_same_score_in_another_process(scorer, tmp_path, untrained_bundle, data_dir):
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(photo()).save(path)
    here = scorer.score(path).score
    output = subprocess.run(
        [sys.executable, "-m", "cvrkd", "score", str(path), "--model", str(untrained_bundle),
         "--json", "--allow-untrained"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**__import__("os").environ, "CVRKD_DATA_DIR": str(data_dir)},
    )
    there = json.loads(output.stdout.strip().splitlines()[-1])["score"]
    assert there == here


def test_fr_mode_uses_the_teacher(scorer):
    pixels = photo()
    result = scorer.score(pixels, reference=pixels.copy())
    assert result.mode == "fr" and result.model_version == scorer.teacher.info.version


def test_untrained_models_are_refused_by_default(untrained_bundle, tmp_path):
    with pytest.raises(NoTrainedModelError, match="untrained"):
        Scorer(untrained_bundle)
    with pytest.raises(NoTrainedModelError, match="no trained model is installed"):
        Scorer(tmp_path / "empty")


def test_gallery_features_are_cached_on_disk(scorer, untrained_bundle, data_dir):
    scorer.gallery_features()
    fresh = Scorer(untrained_bundle, allow_untrained=True, cache_dir=data_dir / "cache")
    fresh.image_features = None  # any recomputation would now fail
    assert fresh.gallery_features().shape[0] == len(scorer.default_gallery())


def test_awkward_inputs_score_through_the_api(scorer, good_inputs):
    for case, path in good_inputs.items():
        result = scorer.score(path)
        assert 0 <= result.score <= 100, case


def test_bad_inputs_raise_and_batches_continue(scorer, bad_inputs):
    for case, path in bad_inputs.items():
        with pytest.raises(InvalidImageError):
            scorer.score(path)
    results = scorer.score_many([bad_inputs["truncated"], photo(), bad_inputs["animated"]])
    assert isinstance(results[0], InvalidImageError) and isinstance(results[2], InvalidImageError)
    assert 0 <= results[1].score <= 100


def test_hot_swap_changes_the_served_version(scorer, tmp_path):
    from cvrkd.checkpoint import save_checkpoint, untrained

    network, info = untrained("student", seed=99)
    new_version = save_checkpoint(network, info, tmp_path / "student")
    old = scorer.model_version
    try:
        assert scorer.swap_student(tmp_path / "student") == new_version
        assert scorer.score(photo()).model_version == new_version
    finally:
        scorer.swap_student(scorer.model_dir / "student")
    assert scorer.model_version == old


def test_a_bare_student_checkpoint_such_as_a_registry_version_scores(untrained_bundle, data_dir):
    scorer = Scorer(untrained_bundle / "student", allow_untrained=True, cache_dir=data_dir / "cache")
    assert scorer.score(photo()).model_version == scorer.model_version


def test_a_whole_image_view_model_scores_maps_and_reads_its_calibration(tmp_path, data_dir):
    """A bundle whose layout adds the whole-image view: scores use 11 views, the quality map
    covers the image, and a stored calibration maps raw scores onto the human scale."""
    import numpy as np
    import torch

    from cvrkd.checkpoint import save_checkpoint, untrained
    from cvrkd.patches import PatchConfig
    from cvrkd.quality_maps import quality_map
    from cvrkd.scorer import Scorer

    layout = PatchConfig(10, 224, whole_view=True)
    for role in ("teacher", "student"):
        network, info = untrained(role, seed=5, patches=layout)
        save_checkpoint(network, info, tmp_path / "bundle" / role)
    scorer = Scorer(tmp_path / "bundle", allow_untrained=True, cache_dir=data_dir / "cache", backend="torch")
    pixels = (np.random.default_rng(1).random((300, 420, 3)) * 255).astype(np.uint8)
    assert scorer.image_features(scorer_image(pixels)).shape[0] == layout.views
    result = scorer.score(pixels)
    qmap = quality_map(scorer, pixels)
    assert qmap.pixels.shape == pixels.shape and qmap.loss.shape[1] * qmap.tile >= 420 and qmap.loss.min() >= 0
    network = scorer.student.network
    raw = torch.tensor([-50.0, 0.0, 50.0, 150.0])
    assert torch.equal(network.calibrate(raw), raw)  # no calibration stored: raw scale
    calibrated = type(network)(network.config.__class__(**{**network.config.to_dict(),
                                                           "calibration": (90.0, 10.0, 50.0, 10.0)}))
    mapped = calibrated.calibrate(raw)
    assert mapped[0] > 10 and mapped[-1] < 90 and torch.all(mapped[1:] > mapped[:-1])
    assert 0 <= result.score <= 100


def scorer_image(pixels):
    from cvrkd.imageio import load_image

    return load_image(pixels)


def test_scoring_leaves_its_inputs_untouched(scorer):
    """Notes about the image (here: upscaled to fit the patches) go to the result, never into the
    caller's LoadedImage, so a caller may score one image many times without copying it."""
    import numpy as np

    from cvrkd.imageio import load_image

    image, original = load_image(photo(160, 128), name="small"), load_image(photo(320, 256), name="original")
    before = [(list(i.notes), i.pixels.copy(), i.name) for i in (image, original)]
    nar = scorer.score(image)
    fr = scorer.score(image, reference=original)
    again = scorer.score(image)
    for loaded, (notes, pixels, name) in zip((image, original), before):
        assert loaded.notes == notes and loaded.name == name
        assert np.array_equal(loaded.pixels, pixels)
    assert any(note.startswith("upscaled from 160x128") for note in nar.notes)
    assert any("resized from 320x256" in note for note in fr.notes)
    assert again.notes == nar.notes and again.score == nar.score


def test_score_many_names_reports_and_scores_as_single_calls_do(scorer, bad_inputs, tmp_path):
    from PIL import Image

    from cvrkd.imageio import load_image

    path = tmp_path / "wide.png"
    Image.fromarray(photo(400, 240)).save(path)
    images = [path, bad_inputs["empty"], load_image(photo(160, 128), name="small")]
    seen, reported = [], []
    results = scorer.score_many(images, names=["a", "b", "c"],
                                progress=lambda i, n, name: seen.append((i, n, name)),
                                on_result=lambda i, r: reported.append((i, r)))
    assert seen == [(0, 3, "a"), (1, 3, "b"), (2, 3, "c")]
    assert reported == list(enumerate(results))
    assert isinstance(results[1], InvalidImageError) and str(results[1])
    assert [results[0].image, results[2].image] == ["a", "c"]
    assert results[0].score == scorer.score(path).score
    assert results[2].score == scorer.score(images[2]).score and results[2].notes
    assert images[2].notes == []  # the caller's image is untouched


def test_score_many_with_one_original_uses_the_teacher_for_each(scorer):
    pixels = photo()
    results = scorer.score_many([pixels, pixels.copy()], reference=pixels.copy())
    assert [r.mode for r in results] == ["fr", "fr"]
    assert results[0].score == results[1].score == scorer.score(pixels, reference=pixels.copy()).score
    with pytest.raises(ValueError, match="2 names for 1 images"):
        scorer.score_many([pixels], names=["a", "b"])


def test_score_images_script_writes_the_scores_of_score_many(scorer, tmp_path, bad_inputs, monkeypatch):
    """``scripts/score_images.py`` scores a CSV's images in one batch; an unreadable one stops it."""
    import csv
    import importlib.util

    from PIL import Image

    spec = importlib.util.spec_from_file_location("score_images", ROOT / "scripts" / "score_images.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script, "Scorer", lambda model: scorer)
    for name, size in (("a.png", (300, 240)), ("b.png", (240, 300))):
        Image.fromarray(photo(*size)).save(tmp_path / name)
    (tmp_path / "list.csv").write_text("image\na.png\nb.png\n")
    script.main(["--csv", str(tmp_path / "list.csv"), "--out", str(tmp_path / "out" / "scores.csv")])
    rows = list(csv.DictReader((tmp_path / "out" / "scores.csv").open()))
    assert [row["image"] for row in rows] == ["a.png", "b.png"]
    for row in rows:
        assert row["score"] == f"{scorer.score(tmp_path / row['image']).score:.4f}"
    (tmp_path / "bad.csv").write_text(f"image\na.png\n{bad_inputs['empty']}\n")
    with pytest.raises(InvalidImageError):
        script.main(["--csv", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "bad-scores.csv")])
    assert not (tmp_path / "bad-scores.csv").exists()
