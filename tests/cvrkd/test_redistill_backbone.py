"""Re-distillation learns through the student's backbone tail and gates each network on its own
backbone; ``cvrkd redistill --bundle-out`` writes a bundle that ``cvrkd score --model`` serves.

Real components throughout: a real annotation store and pool folder, a real (tiny) synthetic
training set regenerated from pixels, the real CLI, the real scorer. The networks are small
so the round takes seconds.
"""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from annotations.schema import image_id_for
from annotations.store import AnnotationStore
from cvrkd.backbone import FrozenBackbone
from cvrkd.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from cvrkd.cli import main
from cvrkd.gallery import create_gallery
from cvrkd.imageio import load_image
from cvrkd.model import CVRKDNet, ModelConfig
from cvrkd.patches import PatchConfig
from cvrkd.scorer import Scorer
from cvrkd.train.finetune import with_tail
from cvrkd.train.redistill import (ROUND_FINETUNE, RedistillConfig, agreement_vector, own_scores, split_images,
                                   trainable_base)
from cvrkd.train.registry import ModelRegistry
from tests.helpers.images import photo

WHOLE = PatchConfig(num_patches=0, whole_view=True)


def _network(seed: int) -> CVRKDNet:
    torch.manual_seed(seed)
    return CVRKDNet(ModelConfig(num_patches=1, dim=32, lq_depth=1, diff_depth=2, distill_layers=2,
                                global_head=16, head_reads_branches=True)).eval()


def _tailed(seed: int, scale: float = 0.05) -> CVRKDNet:
    """A student carrying a 2-stage tail that differs from ImageNet's."""
    network = with_tail(_network(1), FrozenBackbone(), 2)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in network.backbone_tail.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return network


def _bundle(folder, student: CVRKDNet):
    teacher = _network(2)
    for role, network in (("teacher", teacher), ("student", student)):
        save_checkpoint(network, CheckpointInfo(role, "lite0", network.config, WHOLE, trained=True), folder / role)
    return folder


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gallery")
    return create_gallery(folder, "small", [(f"ref{i}", load_image(photo(160 + 16 * i, 128))) for i in range(2)])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A real synthetic training set's files (labels.csv + config.json), regenerated from pixels."""
    folder = tmp_path_factory.mktemp("synthetic")
    source = folder / "source.png"
    Image.fromarray(photo(160, 128)).save(source)
    (folder / "config.json").write_text(json.dumps({"sources": [str(source)], "max_side": 160, "seed": 0,
                                                    "patches": {"num_patches": 0, "size": 64}}))
    rows = [("pristine", 0, 95.0, "train"), ("gaussian_blur", 3, 40.0, "train"), ("jpeg", 5, 20.0, "train"),
            ("white_noise", 2, 60.0, "train"), ("pristine", 0, 95.0, "val"), ("gaussian_blur", 1, 70.0, "val"),
            ("gaussian_blur", 5, 15.0, "val"), ("jpeg", 3, 45.0, "val"), ("white_noise", 4, 30.0, "val")]
    lines = ["source,source_index,variant,distortion,level,label,split"]
    lines += [f"source.png,0,{i},{name},{level},{label},{split}" for i, (name, level, label, split) in enumerate(rows)]
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    """A store + pool: 14 photos whose quality falls with added noise, 160 judgements by that truth
    (10% careless), and one photo's strongest distortion registered as a known-order pair."""
    root = tmp_path_factory.mktemp("crowd")
    pool = root / "pool"
    pool.mkdir()
    store = AnnotationStore(root / "annotations")
    rng = np.random.default_rng(0)
    quality = {}
    for index in range(14):
        pixels = photo(112 + 8 * (index % 3), 96)
        noisy = np.clip(pixels + rng.normal(0, 5 * index, pixels.shape), 0, 255).astype(np.uint8)
        path = pool / "incoming.png"
        Image.fromarray(noisy).save(path)
        image_id = image_id_for(path.read_bytes())
        path.rename(pool / f"{image_id}.png")
        store.register_image(image_id, "dataset", "test photo", dataset="test")
        quality[image_id] = -index
    first = next(iter(quality))
    blurred = np.asarray(Image.open(pool / f"{first}.png").convert("RGB").resize((20, 16)).resize((112, 96)))
    Image.fromarray(blurred).save(pool / "incoming.png")
    blurred_id = image_id_for((pool / "incoming.png").read_bytes())
    (pool / "incoming.png").rename(pool / f"{blurred_id}.png")
    store.register_image(blurred_id, "distortion", "test photo", distortion="pixelate", level=5,
                         reference_id=first)
    ids = list(quality)
    for n in range(160):
        left, right = rng.choice(ids, 2, replace=False)
        choice = "left" if quality[left] > quality[right] else "right"
        if rng.random() < 0.1:
            choice = "right" if choice == "left" else "left"
        store.append({"rater_id": f"r{n % 8}", "left_image_id": left, "right_image_id": right,
                      "choice": choice, "response_ms": 1500})
    store.close()
    return root


def _redistill(tmp_path, model, crowd, gallery, synthetic, *extra):
    """``cvrkd redistill`` on the crowd; the design is ``finetune`` unless ``extra`` names another."""
    design = [] if "--design" in extra else ["--design", "finetune"]
    return main(["redistill", "--store", str(crowd / "annotations"), "--images", str(crowd / "pool"),
                 "--model", str(model), "--out", str(tmp_path / "registry"), "--gallery", str(gallery.root),
                 "--cache", str(tmp_path / "cache"), "--synthetic", str(synthetic), "--epochs", "1",
                 "--steps", "3", "--min-judgements", "20", "--mix", "1", *design, *extra])


def test_redistill_bundle_out_scores_through_cvrkd_score(tmp_path, crowd, gallery, synthetic, capsys,
                                                         monkeypatch):
    monkeypatch.setenv("CVRKD_DATA_DIR", str(tmp_path / "data"))
    model = _bundle(tmp_path / "model", _tailed(0))
    assert _redistill(tmp_path, model, crowd, gallery, synthetic, "--bundle-out", str(tmp_path / "bundle")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bundle"] == str(tmp_path / "bundle")
    student, info = load_checkpoint(tmp_path / "bundle" / "student", expected_role="student")
    assert info.version == report["candidate_version"]
    assert info.extra["gate"]["decision"] == report["decision"]  # the decision travels with the weights
    assert info.extra["gate"]["reason"] == report["reason"]
    assert student.config.tuned_stages == 2 and student.backbone_tail is not None
    teacher, _ = load_checkpoint(tmp_path / "bundle" / "teacher", expected_role="teacher")
    assert all(torch.equal(v, _network(2).state_dict()[k]) for k, v in teacher.state_dict().items())

    image = next((crowd / "pool").glob("*.png"))
    assert main(["score", str(image), "--model", str(tmp_path / "bundle"), "--gallery", str(gallery.root),
                 "--backend", "torch", "--json"]) == 0
    served = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert served["model_version"] == info.version
    expected = own_scores(student, {"x": np.asarray(load_image(image).pixels)}, gallery)["x"]
    assert served["score"] == pytest.approx(min(100.0, max(0.0, expected)), abs=1e-3)


def test_a_round_refuses_a_bundle_folder_holding_other_files(tmp_path, crowd, gallery, synthetic, capsys):
    model = _bundle(tmp_path / "model", _tailed(0))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    assert _redistill(tmp_path, model, crowd, gallery, synthetic, "--bundle-out", str(tmp_path / "taken")) == 2
    assert "not a model bundle" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]
    assert not (tmp_path / "registry").exists()  # refused before any training


def test_the_gate_scores_base_and_candidate_each_through_its_own_backbone(tmp_path, crowd, gallery, synthetic,
                                                                          monkeypatch):
    """The candidate's tail changed, so its held-out scores must be the ones its own bundle gives:
    scores computed on the base's features would not match the scorer's."""
    monkeypatch.setenv("CVRKD_DATA_DIR", str(tmp_path / "data"))
    model = _bundle(tmp_path / "model", _tailed(0))
    assert _redistill(tmp_path, model, crowd, gallery, synthetic, "--bundle-out", str(tmp_path / "bundle")) == 0
    record = ModelRegistry(tmp_path / "registry").runs()[-1]
    base, _ = load_checkpoint(model / "student")
    candidate, _ = load_checkpoint(tmp_path / "bundle" / "student")
    assert not all(torch.equal(v, base.backbone_tail.state_dict()[k])
                   for k, v in candidate.backbone_tail.state_dict().items())  # the tail learnt
    assert record["backbones"]["base"] != record["backbones"]["candidate"]

    store = AnnotationStore(crowd / "annotations")
    judgements = store.judgements()
    pool = {p.stem: p for p in (crowd / "pool").glob("*.png")}
    shown = set(record["validation_scores"]["candidate"])
    assert shown and shown == set(record["validation_scores"]["base"])
    for bundle, which in ((model, "base"), (tmp_path / "bundle", "candidate")):
        scorer = Scorer(bundle, backend="torch", cache_dir=tmp_path / "cache", gallery=gallery)
        served = {i: scorer.score(pool[i]).score for i in shown}
        recorded = record["validation_scores"][which]
        assert served == pytest.approx({i: min(100.0, max(0.0, v)) for i, v in recorded.items()}, abs=1e-3), which
    # the features really differ: the candidate's network on the base's backbone scores otherwise
    views = {i: np.asarray(load_image(pool[i]).pixels) for i in sorted(shown)}
    on_base_backbone = with_tail(_without_tail(candidate), FrozenBackbone(), 2)
    on_base_backbone.backbone_tail.load_state_dict(base.backbone_tail.state_dict())
    mismatched = own_scores(on_base_backbone, views, gallery)
    assert any(abs(mismatched[i] - record["validation_scores"]["candidate"][i]) > 1e-2 for i in shown)
    judged = judgements[judgements["left_image_id"].isin(pool) & judgements["right_image_id"].isin(pool)]
    held = split_images(sorted(set(judged["left_image_id"]) | set(judged["right_image_id"])),
                        RedistillConfig().holdout_fraction, 0)
    val = judged[judged["left_image_id"].isin(held) | judged["right_image_id"].isin(held)]
    assert record["n_validation"] == len(val)
    # both models are scored on every image of the validation pairs, trained partners included
    assert shown == set(val["left_image_id"]) | set(val["right_image_id"]) and shown > held
    assert record["candidate_agreement"] == pytest.approx(
        agreement_vector(record["validation_scores"]["candidate"], val).mean())


def _without_tail(network: CVRKDNet) -> CVRKDNet:

    plain = CVRKDNet(replace(network.config, tuned_stages=0))
    plain.load_state_dict({k: v for k, v in network.state_dict().items() if not k.startswith("backbone_tail.")})
    return plain


def test_a_base_without_a_tail_starts_from_imagenets_and_scores_the_same(tmp_path, crowd, gallery, synthetic,
                                                                         monkeypatch):
    """Older bundles have no tail: the round tunes ImageNet's last stages, and the base it compares
    against scores exactly as the served base does."""
    monkeypatch.setenv("CVRKD_DATA_DIR", str(tmp_path / "data"))
    plain = _network(1)
    start = trainable_base(plain, RedistillConfig(finetune=replace(ROUND_FINETUNE, tuned_stages=2)))
    assert start.config.tuned_stages == 2 and plain.backbone_tail is None
    views = {p.stem: np.asarray(load_image(p).pixels) for p in sorted((crowd / "pool").glob("*.png"))[:3]}
    assert own_scores(start, views, gallery) == pytest.approx(own_scores(plain, views, gallery), abs=1e-4)
    model = _bundle(tmp_path / "model", plain)
    assert _redistill(tmp_path, model, crowd, gallery, synthetic, "--bundle-out", str(tmp_path / "bundle")) == 0
    candidate, info = load_checkpoint(tmp_path / "bundle" / "student")
    assert candidate.config.tuned_stages == RedistillConfig().finetune.tuned_stages and candidate.backbone_tail is not None
    assert info.extra["redistilled_from"] == load_checkpoint(model / "student")[1].version
    record = ModelRegistry(tmp_path / "registry").runs()[-1]
    assert record["n_known_order"] == 1  # the photo and its registered strongest distortion


def test_judgements_train_through_the_same_loop_as_mos(gallery, tmp_path):
    """Crowd judgements (pairs with reliability weights) move the tail in the stage-3 loop; a judgement
    with weight 0 teaches nothing."""
    from cvrkd.train.finetune import FinetuneConfig, Photos, finetune
    from cvrkd.train.pairwise import judgement_pairs

    rng = np.random.default_rng(0)
    pixels = [np.clip(photo(112, 96) + rng.normal(0, 8 * i, (96, 112, 3)), 0, 255).astype(np.uint8)
              for i in range(6)]
    photos = Photos(pixels, np.zeros(6))
    config = FinetuneConfig(tuned_stages=2, epochs=1, batch=4, crop=64, steps_per_epoch=2)
    first, second = np.array([0, 1, 2, 3, 0, 4]), np.array([5, 4, 3, 1, 2, 5])
    choices = ["left"] * 6
    moved = finetune(_network(1), photos, gallery, config, tmp_path / "a", log=lambda m: None,
                     pairs=judgement_pairs(first, second, choices))
    still = finetune(_network(1), photos, gallery, config, tmp_path / "b", log=lambda m: None,
                     pairs=judgement_pairs(first, second, choices, np.zeros(6)))
    imagenet = FrozenBackbone().tail(2).state_dict()
    assert any(not torch.allclose(v, imagenet[k]) for k, v in moved.backbone_tail.state_dict().items())
    # weight 0: no human gradient (weight decay alone still shrinks the weights a little)
    delta = max(float((v - imagenet[k]).abs().max()) for k, v in still.backbone_tail.state_dict().items())
    delta_moved = max(float((v - imagenet[k]).abs().max()) for k, v in moved.backbone_tail.state_dict().items())
    assert delta < delta_moved


def test_judgements_move_the_scores_the_way_people_answered(gallery, tmp_path):
    """The same photos judged one way, then the other: the fine-tuned networks order them as told."""
    from cvrkd.train.finetune import FinetuneConfig, Photos, finetune, predict
    from cvrkd.train.pairwise import judgement_pairs

    rng = np.random.default_rng(0)
    pixels = [np.clip(photo(112, 96) + rng.normal(0, 10 * i, (96, 112, 3)), 0, 255).astype(np.uint8)
              for i in range(4)]
    photos = Photos(pixels, np.zeros(4))
    config = FinetuneConfig(tuned_stages=2, epochs=3, batch=4, crop=64, steps_per_epoch=4, lr_head=3e-3)
    first, second = np.array([0, 0, 1, 0, 1, 2]), np.array([1, 2, 3, 3, 2, 3])  # every pair once
    gaps = {}
    for choice in ("left", "right"):
        tuned = finetune(_network(1), photos, gallery, config, tmp_path / choice, log=lambda m: None,
                         pairs=judgement_pairs(first, second, [choice] * 6))
        scores = predict(tuned, pixels, gallery)
        gaps[choice] = scores[0] - scores[3]
    assert gaps["left"] > gaps["right"]  # "left" = the cleaner photo won every pair


def _with_memory(gallery) -> CVRKDNet:
    """A tailed student whose readout was fitted on (and keeps) 8 labelled photos."""
    from cvrkd.train.finetune import Photos
    from cvrkd.train.readout import with_readout

    rng = np.random.default_rng(1)
    pixels = [np.clip(photo(120, 96) + rng.normal(0, 6 * i, (96, 120, 3)), 0, 255).astype(np.uint8)
              for i in range(8)]
    return with_readout(_tailed(0), Photos(pixels, np.linspace(85, 25, 8)), gallery, 0.4)


def test_a_readout_round_changes_only_the_readout_and_its_bundle_scores(tmp_path, crowd, gallery, synthetic,
                                                                        capsys, monkeypatch):
    monkeypatch.setenv("CVRKD_DATA_DIR", str(tmp_path / "data"))
    base = _with_memory(gallery)
    model = _bundle(tmp_path / "model", base)
    assert _redistill(tmp_path, model, crowd, gallery, synthetic, "--design", "readout",
                      "--bundle-out", str(tmp_path / "bundle")) == 0
    report = json.loads(capsys.readouterr().out)
    candidate, info = load_checkpoint(tmp_path / "bundle" / "student")
    assert info.extra["design"] == "readout" and report["candidate_version"] == info.version
    before, after = base.state_dict(), candidate.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"readout.weight", "readout.bias"}  # backbone, head and kept photos stay
    record = ModelRegistry(tmp_path / "registry").runs()[-1]
    assert record["backbones"]["base"] == record["backbones"]["candidate"]
    # the gate judged the fit that never saw the held-out judgements; what serves is fitted on all of them
    assert record["fitted_on"] == "every judgement" and info.extra["n_fitted_judgements"] == record["n_judgements"]
    held_out_scores = own_scores(candidate, {i: np.asarray(load_image(crowd / "pool" / f"{i}.png").pixels)
                                             for i in record["validation_scores"]["candidate"]}, gallery)
    assert held_out_scores != pytest.approx(record["validation_scores"]["candidate"], abs=1e-6)

    image = next((crowd / "pool").glob("*.png"))
    assert main(["score", str(image), "--model", str(tmp_path / "bundle"), "--gallery", str(gallery.root),
                 "--backend", "torch", "--json"]) == 0
    served = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = own_scores(candidate, {"x": np.asarray(load_image(image).pixels)}, gallery)["x"]
    assert served["score"] == pytest.approx(min(100.0, max(0.0, expected)), abs=1e-3)


def test_a_readout_round_refuses_a_model_that_keeps_no_readout_memory(tmp_path, crowd, gallery, synthetic, capsys):
    model = _bundle(tmp_path / "model", _tailed(0))
    assert _redistill(tmp_path, model, crowd, gallery, synthetic, "--design", "readout") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["decision"] == "rejected" and "keeps no readout memory" in report["reason"]
    assert report["candidate_version"] is None
