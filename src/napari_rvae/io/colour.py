"""RGB renders back to intensity.

Microscopy images are often shared as RGB renders of a grayscale signal:

* **grey renders** (R = G = B) are read as that grey value;
* **false-colour renders** (a monotone colormap such as ``hot``, ``viridis`` or ``inferno``)
  are inverted by following the colormap's path through RGB space: the render's colours are
  linked into a nearest-neighbour graph, the path runs from the darkest to the brightest
  colour along the graph, and each pixel gets its position (arc length) along that path,
  0 at the darkest and 1 at the brightest colour. For ``hot`` this restores the data up to a
  linear scale, which luminance does not (luminance bends the scale where the colormap
  changes hue);
* anything else (a photograph, an overlay with several hues that is not one path) falls back
  to the ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B``.

:func:`rgb_to_intensity` says which was done; the reader stores it as a note.
"""

from __future__ import annotations

import numpy as np

LUMA_WEIGHTS = (0.299, 0.587, 0.114)

#: at most this many distinct colours build the colour path (the most frequent ones)
_PATH_COLOURS = 1500


def luma(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3|4)`` RGB(A) → ``(...)`` float32 grey by the BT.601 luma rule (alpha dropped)."""
    values = np.asarray(rgb)[..., :3].astype(np.float32)
    return values @ np.asarray(LUMA_WEIGHTS, dtype=np.float32)


def rgb_to_intensity(rgb: np.ndarray) -> tuple[np.ndarray, str]:
    """Intensity of an RGB(A) render and a one-line note saying how it was obtained.

    Returns ``(intensity, note)``; ``intensity`` has the shape of ``rgb`` without its last
    axis, float32: the grey value for grey renders, the position along the colormap in
    [0, 1] for false-colour renders, the luma otherwise.
    """
    rgb = np.asarray(rgb)[..., :3]
    values = rgb.astype(np.float32)
    spread = float(np.max(np.ptp(values, axis=-1))) if values.size else 0.0
    full = float(np.max(values)) if values.size else 1.0
    if spread <= 0.02 * max(full, 1.0):
        return values.mean(axis=-1), "grey RGB render: the three channels are equal; read as grey"
    colours, inverse, counts = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True, return_counts=True)
    position = _colour_path_position(colours.astype(np.float64), counts)
    if position is None:
        return luma(rgb), "RGB render converted to grey by luma (0.299 R + 0.587 G + 0.114 B); its colours follow no single colormap"
    intensity = position[inverse.ravel()].reshape(rgb.shape[:-1]).astype(np.float32)
    return intensity, (
        f"false-colour RGB render ({len(colours)} colours on one colormap path): "
        "inverted to intensity 0–1 along the colormap (darkest → brightest colour)"
    )


class RGBConverter:
    """A picklable function ``block (..., 3|4) → intensity (...)`` for one render (see :func:`rgb_converter`)."""

    def __init__(self, kind: str, colours: np.ndarray | None = None, position: np.ndarray | None = None):
        self.kind, self.colours, self.position = kind, colours, position
        self._tree = None

    def __call__(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block)[..., :3]
        if self.kind == "grey":
            return block.astype(np.float32).mean(axis=-1)
        if self.kind == "luma":
            return luma(block)
        if self._tree is None:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(self.colours.astype(np.float64))
        seen, inverse = np.unique(block.reshape(-1, 3), axis=0, return_inverse=True)
        _, nearest = self._tree.query(seen.astype(np.float64), k=1)
        return self.position[nearest][inverse.ravel()].reshape(block.shape[:-1])

    def __getstate__(self) -> dict:
        return {"kind": self.kind, "colours": self.colours, "position": self.position}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["kind"], state["colours"], state["position"])


def rgb_converter(sample: np.ndarray) -> tuple[RGBConverter, str]:
    """The rule :func:`rgb_to_intensity` picks for ``sample`` (a few frames of a render), as a
    function that converts any block of the same render: ``(convert, note)``.

    Used on lazy movies, where the whole render cannot be looked at once: grey and luma renders
    convert exactly as :func:`rgb_to_intensity` does; a false-colour render maps each colour to
    the colormap position of the nearest colour seen in ``sample`` (the same value for every
    colour the sample holds).
    """
    rgb = np.asarray(sample)[..., :3]
    _, note = rgb_to_intensity(rgb)
    if note.startswith("grey"):
        return RGBConverter("grey"), note
    if note.startswith("RGB render converted to grey by luma"):
        return RGBConverter("luma"), note
    colours, counts = np.unique(rgb.reshape(-1, 3), axis=0, return_counts=True)
    position = _colour_path_position(colours.astype(np.float64), counts).astype(np.float32)
    return RGBConverter("path", colours, position), note


def _colour_path_position(colours: np.ndarray, counts: np.ndarray) -> np.ndarray | None:
    """Arc-length position in [0, 1] of each colour along the render's colour path, or ``None``
    when the colours do not lie on one monotone path."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, dijkstra
    from scipy.spatial import cKDTree

    if len(colours) < 8:
        return None
    order = np.argsort(counts)[::-1]
    nodes = colours[order[:_PATH_COLOURS]]
    tree = cKDTree(nodes)
    k = min(8, len(nodes) - 1)
    dist, idx = tree.query(nodes, k=k + 1)
    rows = np.repeat(np.arange(len(nodes)), k)
    graph = coo_matrix((dist[:, 1:].ravel() + 1e-9, (rows, idx[:, 1:].ravel())), shape=(len(nodes),) * 2).tocsr()
    graph = graph.maximum(graph.T)
    n_parts, labels = connected_components(graph, directed=False)
    main = labels == np.bincount(labels).argmax()
    if main.sum() < 0.9 * len(nodes):
        return None
    node_luma = nodes @ np.asarray(LUMA_WEIGHTS)
    start = int(np.flatnonzero(main)[np.argmin(node_luma[main])])
    along = dijkstra(graph, indices=start)
    along[~main] = np.nan
    end = int(np.nanargmax(along))
    length = along[end]
    if not length > 0:
        return None
    # a path, not a cloud: the geodesic distance from the brightest end must add up with the
    # one from the darkest end (a 2-D cloud of colours has many shortcuts and fails this)
    back = dijkstra(graph, indices=end)
    excess = (along + back - length)[main] / length
    if np.nanmedian(excess) > 0.1:
        return None
    # monotone: brightness must grow along the path
    from scipy.stats import spearmanr

    rho = spearmanr(along[main], node_luma[main]).statistic
    if not rho > 0.8:
        return None
    position_nodes = np.clip(along / length, 0.0, 1.0)
    # every colour (also the rare ones left out of the graph) takes its nearest node's position
    _, nearest = tree.query(colours, k=1)
    position = position_nodes[nearest]
    missing = ~np.isfinite(position)
    if missing.any():
        position[missing] = np.interp(colours[missing] @ np.asarray(LUMA_WEIGHTS), np.sort(node_luma[main]),
                                      np.sort(position_nodes[main]))
    return position
