import json

import pytest
import torch

import cvrkd.checkpoint as checkpoint
from cvrkd.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, untrained


def test_round_trip_is_exact_and_versioned(tmp_path):
    network, info = untrained("student", seed=3)
    version = save_checkpoint(network, info, tmp_path / "student")
    loaded, loaded_info = load_checkpoint(tmp_path / "student", expected_backbone="lite0",
                                          expected_role="student")
    assert loaded_info.version == version and len(version) == 12
    for key, value in network.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    assert not loaded_info.trained
    assert (tmp_path / "student" / "model.safetensors").read_bytes()[:8] != b"\x80\x02\x8a\n"  # not a pickle


def test_refuses_another_backbone_or_role(tmp_path):
    network, info = untrained("teacher")
    save_checkpoint(network, info, tmp_path / "teacher")
    with pytest.raises(CheckpointError, match="trained on backbone 'lite0'"):
        load_checkpoint(tmp_path / "teacher", expected_backbone="resnet50")
    with pytest.raises(CheckpointError, match="teacher checkpoint"):
        load_checkpoint(tmp_path / "teacher", expected_role="student")


def test_tampered_weights_are_detected(tmp_path):
    network, info = untrained("student")
    save_checkpoint(network, info, tmp_path / "student")
    weights = tmp_path / "student" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(tmp_path / "student")


def test_a_crash_mid_write_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    network, info = untrained("student", seed=1)
    old_version = save_checkpoint(network, info, tmp_path / "student")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", crash)
    other, other_info = untrained("student", seed=2)
    with pytest.raises(OSError):
        save_checkpoint(other, other_info, tmp_path / "student")
    _, info_after = load_checkpoint(tmp_path / "student")
    assert info_after.version == old_version
    assert [p.name for p in tmp_path.iterdir()] == ["student"]  # no staging debris


def test_config_records_backbone_and_patches(tmp_path):
    network, info = untrained("student")
    save_checkpoint(network, info, tmp_path / "s")
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert config["backbone"] == "lite0" and config["patches"] == {"num_patches": 10, "size": 224, "whole_view": False}
    assert config["role"] == "student" and config["trained"] is False


def test_same_weights_same_version(tmp_path):
    network, info = untrained("student", seed=4)
    assert save_checkpoint(network, info, tmp_path / "a") == save_checkpoint(network, info, tmp_path / "b")
