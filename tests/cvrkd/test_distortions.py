"""The distortion library: contract of ``distort`` and monotone severity for all 25 types."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cvrkd.distortions import DISTORTIONS, LEVELS, distort

KADID_TYPES = (
    "gaussian_blur", "lens_blur", "motion_blur",
    "color_diffusion", "color_shift", "color_quantization", "color_saturation_1",
    "color_saturation_2",
    "jpeg2000", "jpeg",
    "white_noise", "white_noise_color", "impulse_noise", "multiplicative_noise", "denoise",
    "brighten", "darken", "mean_shift",
    "jitter", "non_eccentricity_patch", "pixelate", "quantization", "color_block",
    "high_sharpen", "contrast_change",
)
SEEDED_TYPES = ("motion_blur", "color_shift", "white_noise", "white_noise_color",
                "impulse_noise", "multiplicative_noise", "denoise", "jitter",
                "non_eccentricity_patch", "color_block")
DOC = Path(__file__).resolve().parents[2] / "docs" / "distortions.md"


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b) ** 2))


def test_registry_lists_the_25_kadid_types_in_order():
    assert tuple(DISTORTIONS) == KADID_TYPES
    assert LEVELS == (1, 2, 3, 4, 5)
    for spec in DISTORTIONS.values():
        assert len(spec.values) == len(LEVELS)
        assert spec.group in {"blur", "color", "compression", "noise", "brightness",
                              "spatial", "sharpness_contrast"}


@pytest.mark.parametrize("name", KADID_TYPES)
def test_contract_shape_dtype_determinism_purity(image, name):
    frozen = image.copy()
    frozen.setflags(write=False)  # any in-place write to the input raises
    for level in LEVELS:
        out = distort(frozen, name, level, seed=3)
        assert out.shape == image.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, distort(frozen, name, level, seed=3))
    np.testing.assert_array_equal(frozen, image)


@pytest.mark.parametrize("name", KADID_TYPES)
def test_error_grows_strictly_with_level(image, name):
    errors = [_mse(distort(image, name, level), image) for level in LEVELS]
    assert errors[0] > 0
    assert all(a < b for a, b in zip(errors, errors[1:])), errors


@pytest.mark.parametrize("name", SEEDED_TYPES)
def test_seed_changes_the_random_draw(image, name):
    assert not np.array_equal(distort(image, name, 3, seed=0), distort(image, name, 3, seed=1))


def test_mean_shift_direction_is_seeded(image):
    shifts = [np.mean(distort(image, "mean_shift", 1, seed=s) - image.astype(np.float64))
              for s in range(8)]
    assert min(shifts) < 0 < max(shifts)


def test_bad_arguments_raise_clear_errors(image):
    with pytest.raises(KeyError, match="unknown distortion"):
        distort(image, "fog", 1)
    with pytest.raises(ValueError, match="level"):
        distort(image, "jpeg", 6)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        distort(image[..., 0], "jpeg", 1)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        distort(image.astype(np.float32), "jpeg", 1)


def test_doc_table_matches_registry():
    rows = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"\|\s*\d+\s*\|\s*`(\w+)`\s*\|\s*(\w+)\s*\|.*\|(.*)\|\s*$", line)
        if match:
            rows[match[1]] = (match[2], tuple(float(v) for v in match[3].split(",")))
    assert list(rows) == list(KADID_TYPES)
    for name, (group, values) in rows.items():
        assert (group, values) == (DISTORTIONS[name].group, tuple(map(float, DISTORTIONS[name].values)))
