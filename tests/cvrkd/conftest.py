"""Fixtures shared by the cvrkd tests."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A small natural photo, non-square so that height/width mix-ups show."""
    full = Image.fromarray(data.astronaut()).resize((256, 256), Image.Resampling.BOX)
    return np.asarray(full)[32:224]
