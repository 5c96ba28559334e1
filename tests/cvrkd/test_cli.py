import csv
import os
import subprocess
import sys

from tests.helpers import ROOT


def run_cli(*args, data_dir):
    return subprocess.run([sys.executable, "-m", "cvrkd", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True,
                          env={**os.environ, "CVRKD_DATA_DIR": str(data_dir)})


def test_batch_with_every_awkward_and_bad_input(untrained_bundle, good_inputs, bad_inputs,
                                                data_dir, tmp_path):
    output = tmp_path / "scores.csv"
    images = list(good_inputs.values()) + list(bad_inputs.values())
    done = run_cli("score", *images, "--model", untrained_bundle, "--output", output,
                   "--allow-untrained", data_dir=data_dir)
    assert done.returncode == 1, done.stderr  # some failed, the rest were scored
    rows = {row["path"]: row for row in csv.DictReader(output.open())}
    assert len(rows) == len(images)
    for path in good_inputs.values():
        row = rows[str(path)]
        assert row["error"] == "" and 0 <= float(row["score"]) <= 100 and row["mode"] == "nar"
    for case, path in bad_inputs.items():
        row = rows[str(path)]
        assert row["score"] == "" and row["error"], case
        assert f"error: {path.name}" in done.stderr or str(path) in done.stderr
    assert "untrained model" in done.stderr


def test_plain_error_without_a_trained_model(tmp_path, good_inputs, data_dir):
    done = run_cli("score", good_inputs["non_square"], "--model", tmp_path / "nothing", data_dir=data_dir)
    assert done.returncode == 2
    assert "no trained model is installed" in done.stderr and done.stdout == ""


def test_fr_reference_option(untrained_bundle, good_inputs, data_dir):
    image = good_inputs["non_square"]
    done = run_cli("score", image, "--reference", image, "--model", untrained_bundle,
                   "--allow-untrained", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("fr")


def test_batch_prints_each_image_in_order_with_its_single_image_score(scorer, good_inputs, bad_inputs,
                                                                        untrained_bundle, data_dir):
    import json

    images = [good_inputs["non_square"], bad_inputs["truncated"], good_inputs["small_than_patch"]]
    done = run_cli("score", *images, "--model", untrained_bundle, "--json", "--allow-untrained",
                   data_dir=data_dir)
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [line["image"] for line in lines] == [str(path) for path in images]
    assert "error" in lines[1] and f"error: {lines[1]['error']}" in done.stderr
    for line, path in zip(lines[::2], images[::2]):
        assert line["score"] == scorer.score(path, name=str(path)).score


def test_an_unreadable_original_fails_every_image_and_says_why(good_inputs, bad_inputs, untrained_bundle,
                                                               data_dir):
    images = [good_inputs["non_square"], good_inputs["small_than_patch"]]
    done = run_cli("score", *images, "--reference", bad_inputs["truncated"], "--model", untrained_bundle,
                   "--allow-untrained", data_dir=data_dir)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("error: original: ") == 2  # (the progress bar shares stderr's lines)
