"""napari sample data: each synthetic sample as napari LayerData tuples (no Qt here).

Every function returns the movie (an Image layer with scale, units and axis
labels ``("t", "y", "x")``) followed by its ground truth, hidden by default:
Points with a sites-table ``features`` (``frame, y, x, kind, class,
intensity`` + ground-truth columns), Labels, Tracks and Vectors where they
exist. 1D ground truth (bias, switched fraction …) travels in the image
layer's ``metadata``. The small files in ``sample_data/`` load instantly; the
``*_full`` functions generate the default-size movie.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .synth import make_sample
from .synth.shipped import SHIPPED, shipped_path

AXES = ("t", "y", "x")
VARIANT_COLOURS = ("#ff4040", "#40c040", "#4080ff", "#ffc020", "#909090")  # variants 0-3, substrate


def _load(name: str, full: bool = False) -> dict:
    """The shipped small sample if present (else generate it), or the full default one."""
    if full:
        return make_sample(name, seed=0)
    path = shipped_path(name)
    if path is not None:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    return make_sample(name, seed=0, **SHIPPED[name])


def _frame_units(sample: dict) -> tuple:
    units = [str(u) for u in np.atleast_1d(sample["units"])]
    return tuple(u if u else "" for u in units)


def _image(sample: dict, name: str, extra_meta: tuple[str, ...] = (), **kwargs) -> tuple:
    meta = {"source": "napari-rvae synthetic sample", "sample": name,
            "params": json.loads(str(sample["params"]))}
    for key in extra_meta:
        meta[key] = np.asarray(sample[key])
    layer = {
        "name": name,
        "scale": tuple(float(s) for s in sample["scale"]),
        "units": _frame_units(sample),
        "axis_labels": AXES,
        "metadata": meta,
    }
    layer.update(kwargs)
    return (sample["data"], layer, "image")


def _hidden(sample: dict, **kwargs) -> dict:
    out = {"scale": tuple(float(s) for s in sample["scale"]), "units": _frame_units(sample),
           "axis_labels": AXES, "visible": False}
    out.update(kwargs)
    if "ground truth" in str(out.get("name", "")):  # the docks never take a reference layer as input
        out["metadata"] = {**dict(out.get("metadata") or {}), "ground_truth": True}
    return out


def _sites_features(table: np.ndarray, kind: str, cls, intensity=np.nan, drop=("frame", "y", "x")) -> pd.DataFrame:
    """Sites-table features (DESIGN §3) from a structured ground-truth table."""
    features = pd.DataFrame(
        {
            "frame": table["frame"].astype(np.int64),
            "y": table["y"].astype(np.float64),
            "x": table["x"].astype(np.float64),
            "kind": kind,
            "class": np.broadcast_to(np.asarray(cls, dtype=np.int64), (len(table),)),
            "intensity": intensity,
        }
    )
    for field in table.dtype.names:
        if field not in drop and field != "class":
            features[field] = table[field]
    return features


def _colours(values: np.ndarray, table: dict, default: str = "#ffffff") -> np.ndarray:
    """RGBA per point from a value → colour table (explicit, so colours do not depend on point order)."""

    def rgba(hex_colour: str) -> tuple:
        h = hex_colour.lstrip("#")
        return tuple(int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4)) + (1.0,)

    lut = {k: rgba(v) for k, v in table.items()}
    other = rgba(default)
    return np.array([lut.get(int(v), other) for v in values], dtype=np.float32).reshape(-1, 4)


def _points(table: np.ndarray, features: pd.DataFrame, sample: dict, name: str, size: float, **kwargs) -> tuple:
    coords = np.stack([table["frame"], table["y"], table["x"]], axis=1).astype(np.float64)
    layer = _hidden(sample, name=name, features=features, size=size, border_width=0, **kwargs)
    return (coords, layer, "points")


def graphene_movie(full: bool = False) -> list[tuple]:
    """graphene-movie: HAADF movie + atoms (Points), Si tracks, bonds (Vectors), rings, labels, holes."""
    s = _load("graphene-movie", full)
    cc = float(json.loads(str(s["params"]))["cc"])
    atoms = s["atoms"]
    feats = _sites_features(atoms, "atom", atoms["class"])
    c_peak = 1.0  # C columns peak at 1; Si at (14/6)^1.7 ≈ 4.2 saturates, so C stays visible
    layers = [_image(s, "graphene-movie", colormap="gray", contrast_limits=(0.0, 2.2 * c_peak))]
    layers.append(_points(atoms, feats, s, "atoms (ground truth)", 0.4 * cc,
                          face_color=_colours(atoms["class"], {0: "#40c040", 1: "#ff3030"})))
    # bonds as vectors from atom i to atom j in the same frame
    bonds = s["bonds"]
    if len(bonds):
        key = atoms["frame"].astype(np.int64) * (int(atoms["id"].max()) + 1) + atoms["id"]
        order = np.argsort(key)
        width = int(atoms["id"].max()) + 1

        def row(frame, ident):
            return order[np.searchsorted(key[order], frame.astype(np.int64) * width + ident)]

        i, j = row(bonds["frame"], bonds["i"]), row(bonds["frame"], bonds["j"])
        start = np.stack([atoms["frame"][i], atoms["y"][i], atoms["x"][i]], axis=1).astype(np.float64)
        stop = np.stack([atoms["frame"][j], atoms["y"][j], atoms["x"][j]], axis=1).astype(np.float64)
        vectors = np.stack([start, stop - start], axis=1)
        layers.append((vectors, _hidden(s, name="bonds (ground truth)", edge_width=0.08 * cc,
                                        edge_color="#ffd040", vector_style="line"), "vectors"))
    rings = s["rings"]
    if len(rings):
        ring_feats = pd.DataFrame({"frame": rings["frame"], "y": rings["y"], "x": rings["x"],
                                   "kind": "hollow", "class": rings["size"].astype(np.int64),
                                   "intensity": np.nan, "ring_size": rings["size"]})
        ring_colours = {5: "#ff40ff", 6: "#808080", 7: "#40c0ff", 8: "#ffa040"}
        layers.append(_points(rings, ring_feats, s, "ring centres: 5 magenta, 6 grey, 7 cyan, 8 orange (ground truth)",
                              0.5 * cc, face_color=_colours(rings["size"], ring_colours)))
    si = atoms[atoms["track_id"] >= 0]
    if len(si):
        order = np.lexsort((si["frame"], si["track_id"]))
        tracks = np.stack([si["track_id"], si["frame"], si["y"], si["x"]], axis=1)[order].astype(np.float64)
        tl = _hidden(s, name="Si tracks (ground truth)", tail_length=10)
        layers.append((tracks, tl, "tracks"))
    layers.append((s["labels"], _hidden(s, name="labels 1 bg / 2 C / 3 Si (ground truth)"), "labels"))
    layers.append((s["hole_masks"].astype(np.uint8), _hidden(s, name="holes (ground truth)"), "labels"))
    return layers


def graphene_movie_full() -> list[tuple]:
    """graphene-movie at its default size (20 × 512², generated)."""
    return graphene_movie(full=True)


def ferroic() -> list[tuple]:
    """ferroic: HAADF image + B-/A-site Points, polarisation Vectors, domain map Labels."""
    s = _load("ferroic")
    a = float(json.loads(str(s["params"]))["a"])
    b, at = s["bsites"], s["asites"]
    layers = [_image(s, "ferroic", colormap="gray")]
    layers.append(_points(b, _sites_features(b, "atom", 1), s, "B-sites (ground truth)", 0.3 * a,
                          face_color=_colours(b["variant"], dict(enumerate(VARIANT_COLOURS)))))
    layers.append(_points(at, _sites_features(at, "atom", 0), s, "A-sites (ground truth)", 0.3 * a,
                          face_color="#ffffff"))
    start = np.stack([b["frame"], b["y0"], b["x0"]], axis=1).astype(np.float64)
    vec = np.stack([np.zeros(len(b)), b["py"], b["px"]], axis=1) * np.array([0.0, 3.0, 3.0])
    layers.append((np.stack([start, vec], axis=1),
                   _hidden(s, name="polarisation ×3 (ground truth)", edge_width=0.08 * a, edge_color="#00ffff"),
                   "vectors"))
    domains = np.broadcast_to(s["domain_map"].astype(np.uint8) + 1, s["data"].shape).copy()
    layers.append((domains, _hidden(s, name="domains: variant+1, 5 = substrate (ground truth)"), "labels"))
    return layers


def pfm_switching(full: bool = False) -> list[tuple]:
    """pfm-switching: phase movie + amplitude + domain/wall labels; bias and switched fraction in metadata."""
    s = _load("pfm-switching", full)
    layers = [_image(s, "pfm-switching phase (deg)", ("bias", "switched_fraction"), colormap="PiYG",
                     contrast_limits=(-135.0, 135.0))]
    layers.append((s["amplitude"], _hidden(s, name="pfm amplitude", colormap="magma"), "image"))
    layers.append((s["labels"], _hidden(s, name="1 as grown / 2 switched / 3 wall (ground truth)"), "labels"))
    return layers


def pfm_switching_full() -> list[tuple]:
    """pfm-switching at its default size (40 × 256², generated)."""
    return pfm_switching(full=True)


def domain_movie(full: bool = False) -> list[tuple]:
    """domain-movie: BF-STEM movie + labels (domain / wall / contaminant) + orientation map."""
    s = _load("domain-movie", full)
    layers = [_image(s, "domain-movie", ("bias", "domain_fraction"), colormap="gray")]
    layers.append((s["labels"], _hidden(s, name="1 domain / 2 wall / 3 contaminant (ground truth)"), "labels"))
    layers.append((s["orientation"], _hidden(s, name="needle orientation 1 +45° / 2 −45° (ground truth)"), "labels"))
    return layers


def domain_movie_full() -> list[tuple]:
    """domain-movie at its default size (30 × 512², generated)."""
    return domain_movie(full=True)


def shift_lattice() -> list[tuple]:
    """shift-lattice: image + order parameter map + atoms + phase labels."""
    s = _load("shift-lattice")
    at = s["atoms"]
    op = np.broadcast_to(s["order_parameter"], s["data"].shape).copy()
    phase = np.broadcast_to(s["phase"], s["data"].shape).copy()
    return [
        _image(s, "shift-lattice", colormap="gray"),
        (op, _hidden(s, name="order parameter (ground truth)", colormap="coolwarm", contrast_limits=(-1.0, 1.0),
                     opacity=0.5), "image"),
        _points(at, _sites_features(at, "atom", at["sublattice"]), s, "atoms (ground truth)", 3.0,
                face_color="order", face_colormap="coolwarm"),
        (phase, _hidden(s, name="phase (ground truth)"), "labels"),
    ]


def sines_1d() -> list[tuple]:
    """sines-1d: the (segments × x) curve stack as a 2D image; μ, σ and x in metadata.

    For viewing, rows are sorted by σ then μ (bands of equal period whose phase
    sweeps); ``metadata["row"]`` gives each displayed row's index in the
    generated (random-order) set, and ``mu`` / ``sigma`` follow the displayed
    order. Rows are drawn at 1/50 of a column's height so the stack looks square.
    """
    s = _load("sines-1d")
    order = np.lexsort((s["mu"], s["sigma"]))
    meta = {"source": "napari-rvae synthetic sample", "sample": "sines-1d",
            "params": json.loads(str(s["params"])), "row": order, "mu": s["mu"][order],
            "sigma": s["sigma"][order], "x": s["x"], "value_range": s["value_range"]}
    layer = {"name": "sines-1d (rows sorted by sigma, mu)", "scale": (0.02, 1.0), "axis_labels": ("segment", "x"),
             "metadata": meta, "colormap": "viridis"}
    return [(s["data"][order], layer, "image")]
