"""Headless PNG figures drawn with Pillow (no matplotlib, no Qt).

The analysis functions return plot *data* (arrays, tables); this module turns
that data into simple, legible PNG files for exports and reports: line
plots, scatter plots, heat maps (e.g. a frame × value density) and tiles of
windows (cluster means). Every function writes the file atomically and
returns its path. The interactive plots live in the Analysis dock.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..io.files import atomic_write

# Anchor colours, interpolated linearly (approximations of the named maps).
_MAPS = {
    "viridis": [(68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
                (31, 158, 137), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37)],
    "gray": [(0, 0, 0), (255, 255, 255)],
    "diverging": [(33, 102, 172), (103, 169, 207), (209, 229, 240), (247, 247, 247),
                  (253, 219, 199), (239, 138, 98), (178, 24, 43)],
}
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
SIZE = (640, 480)
MARGIN = (70, 20, 30, 50)  # left, right, top, bottom (pixels)


def colormap(values, name: str = "viridis", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Map values to RGB ``uint8`` (shape ``values.shape + (3,)``).

    ``name``: ``"viridis"``, ``"gray"``, ``"diverging"`` (blue-white-red,
    centred on 0 unless limits are given) or ``"cyclic"`` (hue wheel for
    angles: ``vmin``/``vmax`` default to −π/π). NaN maps to white.
    """
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if name == "cyclic":
        lo, hi = (-np.pi if vmin is None else vmin), (np.pi if vmax is None else vmax)
        hue = np.mod((v - lo) / (hi - lo), 1.0)
        k = np.mod(hue[..., None] * 6 + np.array([5.0, 3.0, 1.0]), 6)
        rgb = 1 - np.clip(np.minimum(k, 4 - k), 0, 1) * 0.85
        out = (rgb * 255).astype(np.uint8)
    else:
        if name not in _MAPS:
            raise ValueError(f"name: colormap {name!r} unknown; use viridis, gray, diverging or cyclic")
        if name == "diverging" and vmin is None and vmax is None:
            m = float(np.abs(finite).max()) if finite.size else 1.0
            vmin, vmax = -m, m
        lo = float(finite.min()) if vmin is None and finite.size else (vmin if vmin is not None else 0.0)
        hi = float(finite.max()) if vmax is None and finite.size else (vmax if vmax is not None else 1.0)
        t = np.clip((v - lo) / ((hi - lo) or 1.0), 0, 1)
        anchors = np.asarray(_MAPS[name], dtype=np.float64)
        pos = np.nan_to_num(t) * (len(anchors) - 1)
        i = np.minimum(pos.astype(np.int64), len(anchors) - 2)
        f = (pos - i)[..., None]
        out = np.round(anchors[i] * (1 - f) + anchors[i + 1] * f).astype(np.uint8)
    out[~np.isfinite(v)] = 255
    return out


def nice_ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """About ``n`` round tick values within ``[lo, hi]``."""
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return np.array([lo])
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** np.floor(np.log10(raw))
    step = mag * min((s for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=10)
    return np.arange(np.ceil(lo / step) * step, hi + step * 1e-9, step)


def _font():
    """Pillow's built-in font at 13 px (a small bitmap font where FreeType is missing)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=13)
    except (TypeError, OSError, ImportError):  # old Pillow / no FreeType
        return ImageFont.load_default()


def _text(draw, xy, text: str, font, align: str = "lt") -> None:
    """Draw text with ``align`` = horizontal (l, m, r) + vertical (t, m, b), for any font kind."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left, bottom - top
    x = xy[0] - {"l": 0, "m": w / 2, "r": w}[align[0]] - left
    y = xy[1] - {"t": 0, "m": h / 2, "b": h}[align[1]] - top
    draw.text((x, y), text, fill="black", font=font)


def _fmt(v: float) -> str:
    return f"{v:.3g}" if v != 0 else "0"


class _Axes:
    """Pillow canvas with one data rectangle, ticks and labels."""

    def __init__(self, xlim, ylim, *, title="", xlabel="", ylabel="", size=SIZE, invert_y=False):
        from PIL import Image, ImageDraw, ImageFont

        self.image = Image.new("RGB", size, "white")
        self.draw = ImageDraw.Draw(self.image)
        self.font = _font()
        left, right, top, bottom = MARGIN
        self.box = (left, top, size[0] - right, size[1] - bottom)
        self.xlim, self.ylim = self._pad(xlim), self._pad(ylim)
        self.invert_y = invert_y  # image convention: y grows downwards
        self.labels = (title, xlabel, ylabel)

    @staticmethod
    def _pad(lim):
        lo, hi = float(lim[0]), float(lim[1])
        if not np.isfinite(lo) or not np.isfinite(hi):
            return (0.0, 1.0)
        return (lo - 0.5, hi + 0.5) if hi <= lo else (lo, hi)

    def to_pixels(self, x, y):
        x0, y0, x1, y1 = self.box
        px = x0 + (np.asarray(x, float) - self.xlim[0]) / (self.xlim[1] - self.xlim[0]) * (x1 - x0)
        frac = (np.asarray(y, float) - self.ylim[0]) / (self.ylim[1] - self.ylim[0])
        py = y0 + frac * (y1 - y0) if self.invert_y else y1 - frac * (y1 - y0)
        return px, py

    def finish(self, path, legend: Sequence[tuple[str, tuple]] = ()):
        x0, y0, x1, y1 = self.box
        d, font = self.draw, self.font
        d.rectangle(self.box, outline="black")
        for t in nice_ticks(*self.xlim):
            px, _ = self.to_pixels(t, 0)
            d.line([(px, y1), (px, y1 + 4)], fill="black")
            _text(d, (px, y1 + 6), _fmt(t), font, "mt")
        for t in nice_ticks(*self.ylim):
            _, py = self.to_pixels(0, t)
            d.line([(x0 - 4, py), (x0, py)], fill="black")
            _text(d, (x0 - 6, py), _fmt(t), font, "rm")
        title, xlabel, ylabel = self.labels
        if title:
            _text(d, ((x0 + x1) / 2, 6), title, font, "mt")
        if xlabel:
            _text(d, ((x0 + x1) / 2, self.image.height - 6), xlabel, font, "mb")
        if ylabel:
            from PIL import Image, ImageDraw

            w = int(d.textlength(ylabel, font=font)) + 4
            tag = Image.new("RGB", (w, 16), "white")
            ImageDraw.Draw(tag).text((2, 1), ylabel, fill="black", font=font)
            tag = tag.rotate(90, expand=True)
            self.image.paste(tag, (2, int((y0 + y1) / 2 - w / 2)))
        if legend:
            width = max(d.textlength(str(name), font=font) for name, _ in legend)
            lx = x1 - 8 - (width + 24)
            d.rectangle([lx - 4, y0 + 4, x1 - 4, y0 + 8 + 16 * len(legend)], fill="white", outline="gray")
            for i, (name, colour) in enumerate(legend):
                ly = y0 + 6 + 16 * i
                d.rectangle([lx, ly + 3, lx + 10, ly + 13], fill=colour)
                d.text((lx + 16, ly + 1), str(name), fill="black", font=font)
        return _save(self.image, path)


def _save(image, path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path: figures are written as PNG; use a .png name, got {path.name}")
    return atomic_write(path, lambda p: image.save(p, format="PNG"))


def _limits(*arrays, pad: float = 0.04):
    """Data range of the arrays, widened by ``pad`` of the span on each side."""
    values = np.concatenate([np.asarray(a, float).ravel() for a in arrays])
    values = values[np.isfinite(values)]
    if not values.size:
        return (0.0, 1.0)
    lo, hi = float(values.min()), float(values.max())
    return (lo - pad * (hi - lo), hi + pad * (hi - lo))


def plot_lines(path, x, ys: Mapping[str, np.ndarray], *, title="", xlabel="", ylabel="", markers=False,
               marks: Sequence[float] = ()) -> Path:
    """Line plot of one or more curves ``ys`` (name → values) against ``x``.

    ``marks``: x positions drawn as grey vertical lines (e.g. histogram peaks).
    """
    x = np.asarray(x, float)
    if not ys:
        raise ValueError("ys: give at least one curve")
    for name, y in ys.items():
        if np.asarray(y).shape != x.shape:
            raise ValueError(f"ys[{name!r}]: shape {np.asarray(y).shape} does not match x {x.shape}")
    ax = _Axes(_limits(x), _limits(*ys.values()), title=title, xlabel=xlabel, ylabel=ylabel)
    for m in marks:
        px, _ = ax.to_pixels(m, 0)
        ax.draw.line([(px, ax.box[1]), (px, ax.box[3])], fill=(160, 160, 160), width=1)
    legend = []
    for i, (name, y) in enumerate(ys.items()):
        colour = PALETTE[i % len(PALETTE)]
        px, py = ax.to_pixels(x, y)
        ok = np.isfinite(px) & np.isfinite(py)
        ax.draw.line(list(zip(px[ok], py[ok])), fill=colour, width=2)
        if markers:
            for a, b in zip(px[ok], py[ok]):
                ax.draw.ellipse([a - 2, b - 2, a + 2, b + 2], fill=colour)
        legend.append((name, colour))
    return ax.finish(path, legend if len(ys) > 1 else ())


def plot_scatter(path, x, y, colour=None, *, cmap="viridis", labels=False, title="", xlabel="", ylabel="",
                 point=2, max_points=50000, seed=0, invert_y=False) -> Path:
    """Scatter plot; ``colour`` per point (values through ``cmap``, or integer labels if ``labels``).

    ``invert_y=True`` puts small y at the top, as in an image (real-space maps of sites).
    """
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y: need the same length, got {x.size} and {y.size}")
    ax = _Axes(_limits(x), _limits(y), title=title, xlabel=xlabel, ylabel=ylabel, invert_y=invert_y)
    idx = np.arange(len(x))
    if len(x) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(len(x), max_points, replace=False))
    if colour is None:
        rgb = np.tile(PALETTE[0], (len(x), 1))
    elif labels:
        lab = np.asarray(colour).astype(np.int64)
        rgb = np.array([PALETTE[v % len(PALETTE)] if v >= 0 else (190, 190, 190) for v in lab])
    else:
        rgb = colormap(colour, cmap)
    px, py = ax.to_pixels(x, y)
    for i in idx:
        if np.isfinite(px[i]) and np.isfinite(py[i]):
            ax.draw.ellipse([px[i] - point, py[i] - point, px[i] + point, py[i] + point], fill=tuple(int(c) for c in rgb[i]))
    legend = []
    if labels and colour is not None:
        legend = [(f"cluster {v}", PALETTE[v % len(PALETTE)]) for v in np.unique(lab) if v >= 0][:10]
    return ax.finish(path, legend)


def plot_image(path, image, *, extent=None, cmap="viridis", vmin=None, vmax=None, title="", xlabel="",
               ylabel="") -> Path:
    """Heat map of a 2D array; row 0 at the bottom. ``extent`` = (x0, x1, y0, y1) in data units."""
    from PIL import Image

    image = np.asarray(image, float)
    if image.ndim != 2:
        raise ValueError(f"image: expected a 2D array, got shape {image.shape}")
    extent = extent or (0, image.shape[1], 0, image.shape[0])
    ax = _Axes(extent[:2], extent[2:], title=title, xlabel=xlabel, ylabel=ylabel)
    x0, y0, x1, y1 = ax.box
    rgb = colormap(image[::-1], cmap, vmin, vmax)
    tile = Image.fromarray(rgb, "RGB").resize((int(x1 - x0), int(y1 - y0)), Image.NEAREST)
    ax.image.paste(tile, (int(x0), int(y0)))
    return ax.finish(path)


def plot_windows(path, windows, *, titles: Sequence[str] | None = None, cmap="diverging", scale=4,
                 columns: int | None = None) -> Path:
    """Tiles of windows (e.g. cluster mean minus global mean), one colour scale for all."""
    from PIL import Image, ImageDraw, ImageFont

    windows = np.asarray(windows, float)
    if windows.ndim != 3 or not len(windows):
        raise ValueError(f"windows: expected a non-empty (K, w, w) stack, got shape {windows.shape}")
    k, h, w = windows.shape
    columns = columns or int(np.ceil(np.sqrt(k)))
    rows = int(np.ceil(k / columns))
    tw, th, gap, head = w * scale, h * scale, 8, 18
    canvas = Image.new("RGB", (columns * (tw + gap) + gap, rows * (th + gap + head) + gap), "white")
    draw, font = ImageDraw.Draw(canvas), _font()
    rgb = colormap(windows, cmap)
    for i in range(k):
        r, c = divmod(i, columns)
        x, y = gap + c * (tw + gap), gap + r * (th + gap + head)
        draw.text((x, y), titles[i] if titles else str(i), fill="black", font=font)
        canvas.paste(Image.fromarray(rgb[i], "RGB").resize((tw, th), Image.NEAREST), (x, y + head))
    return _save(canvas, path)


def save_figure_set(folder: str | os.PathLike, figures: Mapping[str, dict]) -> list[Path]:
    """Write several figures: ``{"name": {"kind": "lines"|"scatter"|"image"|"windows", **arguments}}``.

    Each is written to ``folder/name.png``.
    """
    kinds = {"lines": plot_lines, "scatter": plot_scatter, "image": plot_image, "windows": plot_windows}
    out = []
    for name, spec in figures.items():
        spec = dict(spec)
        kind = spec.pop("kind", None)
        if kind not in kinds:
            raise ValueError(f"figures[{name!r}]: kind must be one of {', '.join(kinds)}, got {kind!r}")
        out.append(kinds[kind](Path(folder) / f"{name}.png", **spec))
    return out
