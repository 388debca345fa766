"""Training crops from sparse labels, with augmentation (numpy + scipy).

Frames are normalised once (see :func:`normalise_frame`); a crop is then cut
around a labelled pixel, zoomed, rotated by a multiple of 90°, flipped, and
its intensities are perturbed (contrast, background gradient, blur, Poisson
and Gaussian noise). Label 0 (unlabelled) stays 0 everywhere, so the loss
ignores it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class Augment:
    """Augmentation ranges (each applied with its own random strength).

    zoom : (min, max) scale factor of the crop (1 = none; > 1 shows objects bigger).
    rotate90, flip : bool
    noise_gauss : max std of added Gaussian noise (in normalised intensity units).
    noise_poisson : (min, max) dose in counts per unit intensity, or ``None``; applied with probability 0.5.
    blur : max Gaussian blur sigma (pixels).
    contrast : (min, max) multiplicative contrast factor (plus a gamma in the same range).
    gradient : max amplitude of a linear background ramp across the crop.
    """

    zoom: tuple = (0.8, 1.25)
    rotate90: bool = True
    flip: bool = True
    noise_gauss: float = 0.08
    noise_poisson: tuple | None = (5.0, 200.0)
    blur: float = 1.0
    contrast: tuple = (0.7, 1.4)
    gradient: float = 0.3

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Augment":
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    @classmethod
    def none(cls) -> "Augment":
        return cls(zoom=(1.0, 1.0), rotate90=False, flip=False, noise_gauss=0.0, noise_poisson=None,
                   blur=0.0, contrast=(1.0, 1.0), gradient=0.0)


def normalise_frame(frame: np.ndarray, index: int = 0) -> np.ndarray:
    """Per-frame normalisation used for training and prediction.

    The 1st and 99th percentiles of the finite pixels map to 0 and 1 (robust to
    hot pixels and holes); NaN / inf pixels are set to the frame's median.

    Raises
    ------
    ValueError
        An all-NaN frame, or a constant frame (no contrast to segment).
    """
    frame = np.asarray(frame, dtype=np.float32)
    finite = np.isfinite(frame)
    if not finite.any():
        raise ValueError(f"frame {index} has no finite pixels (all NaN / inf); remove or fill it before segmenting")
    values = frame[finite]
    lo, hi = np.percentile(values, [1.0, 99.0])
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        raise ValueError(f"frame {index} is constant (value {lo:g}); there is nothing to segment in it")
    out = (frame - np.float32(lo)) / np.float32(hi - lo)
    if not finite.all():
        out[~finite] = np.float32(np.median(out[finite]))
    return out


def _zoomed_crop(image, labels, cy, cx, size, zoom, rng):
    """Cut a ``size / zoom`` source window near (cy, cx), resample to ``size``; reflect at borders."""
    src = max(4, int(round(size / zoom)))
    jitter = rng.integers(-(src // 2) + 1, src // 2, size=2) if src > 2 else np.zeros(2, int)
    y0 = int(cy - src // 2 + jitter[0])
    x0 = int(cx - src // 2 + jitter[1])
    Y, X = image.shape
    ys = np.arange(y0, y0 + src)
    xs = np.arange(x0, x0 + src)
    # reflect indices into the frame
    ys = np.abs(ys) % (2 * Y - 2 if Y > 1 else 1)
    ys = np.where(ys >= Y, 2 * Y - 2 - ys, ys)
    xs = np.abs(xs) % (2 * X - 2 if X > 1 else 1)
    xs = np.where(xs >= X, 2 * X - 2 - xs, xs)
    img = image[np.ix_(ys, xs)]
    lab = labels[np.ix_(ys, xs)]
    if src != size:
        f = size / src
        img = ndimage.zoom(img, f, order=1, mode="reflect", grid_mode=True)
        lab = ndimage.zoom(lab, f, order=0, mode="nearest", grid_mode=True)
        img, lab = _fit(img, size), _fit(lab, size)
    return img, lab


def _fit(a: np.ndarray, size: int) -> np.ndarray:
    a = a[:size, :size]
    if a.shape != (size, size):
        a = np.pad(a, ((0, size - a.shape[0]), (0, size - a.shape[1])), mode="edge")
    return a


def augment_intensity(img: np.ndarray, aug: Augment, rng: np.random.Generator) -> np.ndarray:
    """Contrast, gamma, gradient, blur and noise on a normalised crop."""
    img = img.astype(np.float32, copy=True)
    c0, c1 = aug.contrast
    if c1 > c0 or c0 != 1.0:
        gamma = float(rng.uniform(c0, c1))
        lo = float(img.min())
        img = (np.clip(img - lo, 0, None) ** gamma) + lo
        img = img * float(rng.uniform(c0, c1)) + float(rng.normal(0, 0.1))
    if aug.gradient > 0:
        th = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]].astype(np.float32) / max(img.shape)
        img += np.float32(rng.uniform(0, aug.gradient)) * (np.cos(th) * xx + np.sin(th) * yy - 0.5).astype(np.float32)
    if aug.blur > 0 and rng.random() < 0.5:
        img = ndimage.gaussian_filter(img, float(rng.uniform(0.2, aug.blur)))
    if aug.noise_poisson is not None and rng.random() < 0.5:
        d0, d1 = aug.noise_poisson
        dose = float(np.exp(rng.uniform(np.log(d0), np.log(d1))))
        lo = float(img.min())
        img = rng.poisson(np.clip(img - lo, 0, None) * dose).astype(np.float32) / dose + lo
    if aug.noise_gauss > 0:
        img = img + rng.normal(0, rng.uniform(0, aug.noise_gauss), img.shape).astype(np.float32)
    return img.astype(np.float32)


def random_crops(
    images: np.ndarray,
    labels: np.ndarray,
    n: int,
    size: int,
    aug: Augment,
    rng: np.random.Generator,
    pixels_by_class: list | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` augmented crops ``(n, size, size)`` (float32 images, int64 labels).

    Each crop is centred near a labelled pixel of a class drawn uniformly from
    the classes present, so rare classes are seen as often as common ones.
    ``pixels_by_class`` caches :func:`labelled_pixels` output.
    """
    if pixels_by_class is None:
        pixels_by_class = labelled_pixels(labels)
    if not pixels_by_class:
        raise ValueError("labels contain no labelled pixel (all 0); paint some background (1) and class (2…) strokes")
    out_img = np.empty((n, size, size), np.float32)
    out_lab = np.empty((n, size, size), np.int64)
    for i in range(n):
        coords = pixels_by_class[rng.integers(len(pixels_by_class))]
        t, cy, cx = coords[rng.integers(len(coords))]
        zoom = float(np.exp(rng.uniform(np.log(aug.zoom[0]), np.log(aug.zoom[1]))))
        img, lab = _zoomed_crop(images[t], labels[t], cy, cx, size, zoom, rng)
        if aug.rotate90:
            k = int(rng.integers(4))
            img, lab = np.rot90(img, k), np.rot90(lab, k)
        if aug.flip and rng.random() < 0.5:
            img, lab = img[:, ::-1], lab[:, ::-1]
        out_img[i] = augment_intensity(np.ascontiguousarray(img), aug, rng)
        out_lab[i] = lab
    return out_img, out_lab


def labelled_pixels(labels: np.ndarray) -> list:
    """For each label value > 0 present: an ``(M, 3)`` array of ``(t, y, x)`` (subsampled to ≤ 200 000)."""
    out = []
    for value in np.unique(labels):
        if value <= 0:
            continue
        coords = np.argwhere(labels == value)
        if len(coords) > 200_000:
            coords = coords[np.random.default_rng(int(value)).choice(len(coords), 200_000, replace=False)]
        out.append(coords)
    return out
