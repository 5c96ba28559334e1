"""Every awkward input has one defined behaviour, through the loading API."""
import numpy as np
import pytest
from PIL import Image

from cvrkd.imageio import MAX_SIDE, InvalidImageError, load_image

EXPECTED_NOTE = {
    "small_than_patch": None,
    "non_square": None,
    "very_large": "downscaled",
    "grayscale": "grayscale",
    "16bit": "16-bit",
    "alpha": "transparent",
    "palette": "palette",
    "cmyk": "CMYK",
    "exif_rotated": "EXIF",
}

EXPECTED_ERROR = {
    "not_an_image": "not an image",
    "truncated": "truncated",
    "empty": "empty",
    "huge_pixel_count": "megapixels",
    "animated": "animated",
    "tiny": "too small",
    "missing": "not found",
}


@pytest.mark.parametrize("case", sorted(EXPECTED_NOTE))
def test_awkward_inputs_load_as_8bit_rgb_with_a_note(good_inputs, case):
    loaded = load_image(good_inputs[case])
    assert loaded.pixels.dtype == np.uint8 and loaded.pixels.ndim == 3 and loaded.pixels.shape[2] == 3
    assert max(loaded.pixels.shape[:2]) <= MAX_SIDE
    if EXPECTED_NOTE[case]:
        assert any(EXPECTED_NOTE[case] in note for note in loaded.notes), loaded.notes


def test_exif_rotation_is_applied(good_inputs):
    stored = Image.open(good_inputs["exif_rotated"]).size
    loaded = load_image(good_inputs["exif_rotated"])
    assert loaded.size == (stored[1], stored[0])


def test_sixteen_bit_keeps_its_range(good_inputs):
    loaded = load_image(good_inputs["16bit"])
    assert loaded.pixels.max() > 200 and np.all(loaded.pixels[..., 0] == loaded.pixels[..., 1])


@pytest.mark.parametrize("case", sorted(EXPECTED_ERROR))
def test_bad_inputs_are_refused_with_a_clear_message(bad_inputs, case):
    with pytest.raises(InvalidImageError, match=EXPECTED_ERROR[case]):
        load_image(bad_inputs[case])


def test_arrays_and_bytes_are_accepted(good_inputs):
    from_bytes = load_image(good_inputs["non_square"].read_bytes())
    from_array = load_image(np.asarray(Image.open(good_inputs["non_square"])))
    assert np.array_equal(from_bytes.pixels, from_array.pixels)
    floats = load_image(from_array.pixels.astype(np.float32) / 255.0)
    assert np.abs(floats.pixels.astype(int) - from_array.pixels).max() <= 1
