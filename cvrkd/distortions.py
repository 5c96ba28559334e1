"""The 25 KADID-10k distortion types at 5 increasing levels, as pure seeded functions.

Synthetic distortions give the FR teacher and NAR student (pre-)training data with
known pristine originals. The types and their grouping follow KADID-10k (Lin, Hosu
and Saupe, 2019); the implementations and level parameters are our own, chosen so
that every type gets strictly worse from level 1 to level 5 (tests check this with
FR metrics). ``docs/distortions.md`` holds the table of types and parameters.

Randomised types draw their randomness once per call from ``seed`` and scale it by
the level (same noise field, larger amplitude; the first ``n`` of the same patches),
so a higher level is the lower one plus more damage, never a different draw.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np
from PIL import Image, features
from scipy import ndimage, signal
from skimage import color, restoration

LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)

Apply = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class DistortionSpec:
    """One distortion type: what it does and its parameter value at each level."""

    group: str
    description: str
    parameter: str  # meaning and unit of ``values``
    values: tuple[float, ...]  # parameter at levels 1..5
    apply: Apply  # (float RGB image in [0, 1], parameter, rng) -> float RGB image


# --- helpers -------------------------------------------------------------------------


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x) * 255.0), 0, 255).astype(np.uint8)


def _to_pil(x: np.ndarray) -> Image.Image:
    return Image.fromarray(_to_uint8(x))


def _from_pil(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def _convolve(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Filter each channel with ``kernel`` (reflected borders, FFT for large kernels)."""
    kh, kw = kernel.shape
    pad = ((kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2), (0, 0))
    padded = np.pad(x, pad, mode="reflect")
    return signal.fftconvolve(padded, kernel[:, :, None], mode="valid", axes=(0, 1))


def _rgb(lab: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # out-of-gamut colours are clipped, as intended
        warnings.simplefilter("ignore", UserWarning)
        return color.lab2rgb(lab)


def _ycbcr(x: np.ndarray) -> np.ndarray:
    return color.rgb2ycbcr(x) / 255.0


def _from_ycbcr(y: np.ndarray) -> np.ndarray:
    return color.ycbcr2rgb(y * 255.0)


# --- blur ----------------------------------------------------------------------------


def _gaussian_blur(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0), mode="reflect")


def _disk_kernel(radius: float, supersample: int = 8) -> np.ndarray:
    """Anti-aliased disk: each tap is the fraction of its pixel inside the circle."""
    r = int(np.ceil(radius))
    n = (2 * r + 1) * supersample
    coords = (np.arange(n) + 0.5) / supersample - (r + 0.5)
    inside = (coords[:, None] ** 2 + coords[None, :] ** 2) <= radius**2
    k = inside.reshape(2 * r + 1, supersample, 2 * r + 1, supersample).mean(axis=(1, 3))
    return k / k.sum()


def _lens_blur(x: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    return _convolve(x, _disk_kernel(radius))


def _line_kernel(length: float, angle: float, samples_per_px: int = 8) -> np.ndarray:
    """A straight motion path of ``length`` px at ``angle``, splatted bilinearly."""
    r = int(np.ceil(length / 2)) + 1
    t = np.linspace(-length / 2, length / 2, int(length * samples_per_px) + 1)
    ys, xs = r + t * np.sin(angle), r + t * np.cos(angle)
    k = np.zeros((2 * r + 1, 2 * r + 1))
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(k, (y0 + dy, x0 + dx), wy * wx)
    return k / k.sum()


def _motion_blur(x: np.ndarray, length: float, rng: np.random.Generator) -> np.ndarray:
    return _convolve(x, _line_kernel(length, rng.uniform(0, np.pi)))


# --- colour --------------------------------------------------------------------------


def _color_diffusion(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    lab = color.rgb2lab(x)
    lab[..., 1:] = ndimage.gaussian_filter(lab[..., 1:], sigma=(sigma, sigma, 0), mode="reflect")
    return _rgb(lab)


def _color_shift(x: np.ndarray, shift: float, rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    out = x.copy()
    out[..., 1] = ndimage.shift(x[..., 1], (shift * np.sin(angle), shift * np.cos(angle)),
                                order=1, mode="nearest")
    return out


def _color_quantization(x: np.ndarray, colors: float, rng: np.random.Generator) -> np.ndarray:
    im = _to_pil(x).quantize(colors=int(colors), method=Image.Quantize.MEDIANCUT,
                             dither=Image.Dither.NONE)
    return _from_pil(im)


def _desaturate(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    hsv = color.rgb2hsv(x)
    hsv[..., 1] *= factor
    return color.hsv2rgb(hsv)


def _oversaturate(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    lab = color.rgb2lab(x)
    lab[..., 1:] *= factor
    return _rgb(lab)


# --- compression ---------------------------------------------------------------------


def _jpeg(x: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    buf = io.BytesIO()
    _to_pil(x).save(buf, format="JPEG", quality=int(quality), subsampling="4:2:0")
    return _from_pil(Image.open(buf))


def _jpeg2000(x: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    if not features.check("jpg_2000"):
        # Substituting another codec would silently mislabel the data.
        raise RuntimeError("jpeg2000 needs Pillow built with OpenJPEG (the PyPI wheels are)")
    buf = io.BytesIO()
    _to_pil(x).save(buf, format="JPEG2000", quality_mode="rates",
                    quality_layers=[float(ratio)], irreversible=True)
    return _from_pil(Image.open(buf))


# --- noise ---------------------------------------------------------------------------


def _white_noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return x + sigma * rng.standard_normal(x.shape, dtype=np.float32)


def _white_noise_color(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    ycc = _ycbcr(x)
    ycc[..., 1:] += sigma * rng.standard_normal(ycc[..., 1:].shape)
    return _from_ycbcr(ycc)


def _impulse_noise(x: np.ndarray, density: float, rng: np.random.Generator) -> np.ndarray:
    hit = rng.random(x.shape) < density
    salt = rng.random(x.shape) < 0.5
    return np.where(hit, salt.astype(x.dtype), x)


def _multiplicative_noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return x * (1.0 + sigma * rng.standard_normal(x.shape, dtype=np.float32))


def _denoise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = np.clip(x + sigma * rng.standard_normal(x.shape, dtype=np.float32), 0, 1)
    return restoration.denoise_nl_means(noisy, h=0.8 * sigma, sigma=sigma, patch_size=5,
                                        patch_distance=6, fast_mode=True, channel_axis=-1)


# --- brightness ----------------------------------------------------------------------


def _lightness_gamma(x: np.ndarray, gamma: float, rng: np.random.Generator) -> np.ndarray:
    lab = color.rgb2lab(x)
    lab[..., 0] = 100.0 * (np.clip(lab[..., 0], 0, 100) / 100.0) ** gamma
    return _rgb(lab)


def _mean_shift(x: np.ndarray, shift: float, rng: np.random.Generator) -> np.ndarray:
    return x + shift * rng.choice((-1.0, 1.0))


# --- spatial -------------------------------------------------------------------------


def _jitter(x: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    h, w = x.shape[:2]
    offsets = amplitude * rng.standard_normal((2, h, w))
    grid = np.mgrid[0:h, 0:w].astype(np.float64) + offsets
    return np.stack([ndimage.map_coordinates(x[..., c], grid, order=1, mode="reflect")
                     for c in range(3)], axis=-1)


def _patch_side(x: np.ndarray, fraction: float) -> int:
    return max(2, int(round(min(x.shape[:2]) * fraction)))


def _random_boxes(x: np.ndarray, side: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Top-left corners of ``count`` boxes of ``side`` px lying inside the image."""
    h, w = x.shape[:2]
    return np.stack([rng.integers(0, h - side + 1, count), rng.integers(0, w - side + 1, count)], 1)


_MAX_PATCHES = 1000  # randomness is drawn for this many, so levels reuse the same patches


def _non_eccentricity_patch(x: np.ndarray, count: float, rng: np.random.Generator) -> np.ndarray:
    side = _patch_side(x, 1 / 24)
    dest = _random_boxes(x, side, _MAX_PATCHES, rng)
    offsets = rng.integers(-side, side + 1, (_MAX_PATCHES, 2))
    src = np.clip(dest + offsets, 0, np.array(x.shape[:2]) - side)
    out = x.copy()
    for (dy, dx), (sy, sx) in zip(dest[: int(count)], src[: int(count)]):
        out[dy:dy + side, dx:dx + side] = x[sy:sy + side, sx:sx + side]
    return out


def _pixelate(x: np.ndarray, block: float, rng: np.random.Generator) -> np.ndarray:
    h, w = x.shape[:2]
    small = _to_pil(x).resize((max(1, round(w / block)), max(1, round(h / block))), Image.Resampling.BOX)
    return _from_pil(small.resize((w, h), Image.Resampling.NEAREST))


def _quantization(x: np.ndarray, levels: float, rng: np.random.Generator) -> np.ndarray:
    step = 1.0 / levels
    return (np.floor(x / step).clip(0, levels - 1) + 0.5) * step


def _color_block(x: np.ndarray, count: float, rng: np.random.Generator) -> np.ndarray:
    side = _patch_side(x, 1 / 12)
    corners = _random_boxes(x, side, _MAX_PATCHES, rng)
    colours = rng.random((_MAX_PATCHES, 3))
    out = x.copy()
    for (y, x0), c in zip(corners[: int(count)], colours[: int(count)]):
        out[y:y + side, x0:x0 + side] = c
    return out


# --- sharpness and contrast ----------------------------------------------------------


def _high_sharpen(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    lab = color.rgb2lab(x)
    lightness = lab[..., 0]
    lab[..., 0] = lightness + amount * (lightness - ndimage.gaussian_filter(lightness, 1.5))
    return _rgb(lab)


def _contrast_change(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    mean = x.mean()
    return mean + factor * (x - mean)


# --- registry ------------------------------------------------------------------------

_S = DistortionSpec
DISTORTIONS: Mapping[str, DistortionSpec] = MappingProxyType({
    "gaussian_blur": _S("blur", "Gaussian low-pass filter", "sigma (px)",
                        (0.5, 1.0, 2.0, 3.5, 6.0), _gaussian_blur),
    "lens_blur": _S("blur", "defocus: convolution with an anti-aliased disk", "radius (px)",
                    (1.0, 2.0, 4.0, 6.0, 8.0), _lens_blur),
    "motion_blur": _S("blur", "convolution with a straight path at a seeded angle", "length (px)",
                      (3.0, 6.0, 10.0, 15.0, 22.0), _motion_blur),
    "color_diffusion": _S("color", "Gaussian blur of the a*, b* channels in CIELAB", "sigma (px)",
                          (1.0, 3.0, 6.0, 8.0, 12.0), _color_diffusion),
    "color_shift": _S("color", "green channel translated in a seeded direction", "shift (px)",
                      (1.0, 3.0, 6.0, 8.0, 12.0), _color_shift),
    "color_quantization": _S("color", "median-cut palette, no dithering", "colours",
                             (64, 48, 32, 16, 8), _color_quantization),
    "color_saturation_1": _S("color", "HSV saturation multiplied (desaturation)", "factor",
                             (0.6, 0.4, 0.2, 0.1, 0.0), _desaturate),
    "color_saturation_2": _S("color", "CIELAB a*, b* multiplied (oversaturation)", "factor",
                             (1.5, 2.0, 3.0, 4.0, 6.0), _oversaturate),
    "jpeg2000": _S("compression", "JPEG 2000 (OpenJPEG, 9/7 wavelet)", "compression ratio",
                   (16, 32, 45, 120, 170), _jpeg2000),
    "jpeg": _S("compression", "baseline JPEG, 4:2:0 chroma subsampling", "quality",
               (50, 30, 20, 10, 5), _jpeg),
    "white_noise": _S("noise", "additive Gaussian noise, independent per RGB channel",
                      "sigma (of 1)", (0.03, 0.045, 0.06, 0.08, 0.11), _white_noise),
    "white_noise_color": _S("noise", "additive Gaussian noise on the Cb, Cr channels only",
                            "sigma (of 1)", (0.04, 0.06, 0.09, 0.13, 0.18), _white_noise_color),
    "impulse_noise": _S("noise", "salt-and-pepper noise, per channel", "density",
                        (0.005, 0.01, 0.02, 0.04, 0.07), _impulse_noise),
    "multiplicative_noise": _S("noise", "speckle: pixel times (1 + Gaussian)", "sigma",
                               (0.05, 0.1, 0.15, 0.22, 0.3), _multiplicative_noise),
    "denoise": _S("noise", "Gaussian noise, then non-local-means denoising", "noise sigma (of 1)",
                  (0.04, 0.07, 0.1, 0.14, 0.2), _denoise),
    "brighten": _S("brightness", "gamma curve on CIELAB lightness (< 1 brightens)", "gamma",
                   (0.8, 0.65, 0.5, 0.38, 0.27), _lightness_gamma),
    "darken": _S("brightness", "gamma curve on CIELAB lightness (> 1 darkens)", "gamma",
                 (1.25, 1.5, 2.0, 2.6, 3.4), _lightness_gamma),
    "mean_shift": _S("brightness", "constant added to all channels, seeded sign",
                     "shift (of 1)", (0.05, 0.1, 0.15, 0.2, 0.25), _mean_shift),
    "jitter": _S("spatial", "each pixel resampled at a Gaussian random offset", "offset sigma (px)",
                 (0.3, 0.6, 1.0, 1.6, 2.5), _jitter),
    "non_eccentricity_patch": _S("spatial", "patches (side 1/24 of the short edge) copied from "
                                 "a nearby place", "patches", (20, 40, 60, 80, 100),
                                 _non_eccentricity_patch),
    "pixelate": _S("spatial", "box-averaged blocks, nearest-neighbour upscaled", "block (px)",
                   (2, 3, 4, 6, 9), _pixelate),
    "quantization": _S("spatial", "uniform per-channel quantisation, mid-point values", "levels",
                       (24, 16, 10, 6, 4), _quantization),
    "color_block": _S("spatial", "random-coloured squares (side 1/12 of the short edge)",
                      "squares", (2, 4, 6, 8, 10), _color_block),
    "high_sharpen": _S("sharpness_contrast", "unsharp mask (sigma 1.5 px) on CIELAB lightness",
                       "amount", (1.0, 2.0, 3.0, 5.0, 8.0), _high_sharpen),
    "contrast_change": _S("sharpness_contrast", "pixels pulled towards the image mean",
                          "factor", (0.8, 0.65, 0.5, 0.35, 0.2), _contrast_change),
})


def distort(image: np.ndarray, name: str, level: int, seed: int = 0) -> np.ndarray:
    """Apply distortion ``name`` at ``level`` (1 = mildest, 5 = strongest).

    ``image`` is an HxWx3 uint8 RGB array and is not modified; the result has the same
    shape and dtype, and is the same for the same ``seed``.
    """
    if name not in DISTORTIONS:
        raise KeyError(f"unknown distortion {name!r}; choose from {', '.join(DISTORTIONS)}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}")
    spec = DISTORTIONS[name]
    x = image.astype(np.float32) / 255.0
    out = spec.apply(x, spec.values[level - 1], np.random.default_rng(seed))
    return _to_uint8(out)
