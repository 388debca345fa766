"""Detect dock: atoms (or PFM domain walls) → a Points layer with the sites table as features.

Everything is done by :mod:`napari_rvae.detect`; the dock gathers the
settings, runs detection in the background and adds the layers: the sites
(``frame, y, x`` points, features ``kind, class, intensity …``), optionally
ring centres (hollow sites, with the per-atom ring counts ``n5 … n8`` in the
atoms' features) and tracks (napari Tracks layer, ``track_id`` feature).
"""

from __future__ import annotations

import napari
import numpy as np
from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QWidget

from ._common import LayerPicker, button, collapsible, scroll_body, dspin, form_label, spin, tip
from ._workers import BackgroundJob

METHODS = {
    "peaks": "peak finding on the smoothed raw image (no model needed)",
    "threshold": "threshold + connected components of the normalised image",
    "model": "the shipped default atom segmenter, then threshold + components",
    "walls (PFM)": "domain map of a PFM phase movie, then wall pixels as sites",
}


def detect_job(movie, settings: dict):
    """Background job: detection, then optional rings and tracks. Returns (sites, hollows, tracks)."""
    from ..detect import detect_atoms, find_rings, find_walls, link_tracks, tracks_layer_data

    yield "detecting"
    if settings["method"] == "walls (PFM)":
        tip = settings.get("tip_sigma", 1.0)
        sites = find_walls(movie, n_per_frame=settings["walls_per_frame"] or None, tip_sigma=tip if tip > 0 else None,
                           seed=0)
        return sites, None, None
    sites = detect_atoms(movie, method=settings["method"], threshold=settings["threshold"], sigma=settings["sigma"],
                         edge_margin=settings["edge_margin"], refine=settings["refine"],
                         precision=settings.get("precision", "float32"))
    hollows = tracks = None
    if settings["rings"] and len(sites):
        yield "finding rings"
        sites, hollows = find_rings(sites)
    if settings["tracks"] and len(sites) and sites["frame"].nunique() > 1:
        yield "linking tracks"
        sites = link_tracks(sites, r_max=settings["r_max"], classes=settings["track_class"])
        tracks = tracks_layer_data(sites)
    return sites, hollows, tracks


class Detect(QWidget):
    """The dock."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self._made: dict = {}  # layers this dock added, by role: replaced on the next run
        self.setMinimumSize(300, 330)
        self.job = BackgroundJob("Detecting sites", on_yield=self._on_yield, on_return=self._on_return,
                                 on_finish=self._on_finish, uses_torch=False, parent=self)
        self.image_picker = LayerPicker(napari_viewer, (napari.layers.Image,), "Movie (bright atoms) or PFM phase movie")
        self.method_combo = tip(QComboBox(), "; ".join(f"{k}: {v}" for k, v in METHODS.items()))
        self.method_combo.addItems(list(METHODS))
        self.threshold = dspin(0.0, 0.0, 1.0, "Relative peak height (peaks) or probability threshold (threshold, model); "
                               "'auto' = the method's default", 0.05)
        self.threshold.setSpecialValueText("auto")
        self.refine_check = tip(QCheckBox("sub-pixel refinement"), "Fit a 2D Gaussian to every atom (slower, more precise)")
        self.refine_check.setChecked(True)
        self.rings_check = tip(QCheckBox("rings / hollow sites"), "Bond graph → 5-8 membered rings; ring centres as hollow sites")
        self.tracks_check = tip(QCheckBox("tracks"), "Link sites frame to frame (e.g. hopping Si dopants) into a Tracks layer")
        self.sigma = dspin(1.0, 0.0, 20.0, "Smoothing before peak finding (pixels)", 0.5)
        self.edge_margin = dspin(2.0, 0.0, 100.0, "Drop atoms closer than this to the border (pixels)", 1.0)
        self.r_max = dspin(5.0, 0.5, 200.0, "Largest step of a site between frames (pixels)", 0.5)
        self.track_class = spin(1, -1, 99, "Class to track (-1 = all; 1 = the bright impurity class)")
        self.walls_per_frame = spin(0, 0, 1_000_000, "Walls: at most this many wall pixels per frame (0 = all)")
        self.tip_sigma = dspin(1.0, 0.0, 10.0, "Walls: tip blur σ (pixels) of the fit that recovers small blurred "
                               "domains; 0 = threshold the phase only (faster)", 0.25)
        self.precision_combo = tip(QComboBox(), "Segmenter arithmetic for the model method: int8 is about 2× faster "
                                   "on long movies (calibrated on this movie, a few seconds once), float32 is exact")
        self.precision_combo.addItems(["float32", "int8"])
        self.detect_button = button("Detect", "Find the sites of every frame", self.run)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow(form_label("image", "Movie"), self.image_picker)
        form.addRow(form_label("method", "Detection method"), self.method_combo)
        form.addRow(form_label("threshold", self.threshold.toolTip()), self.threshold)
        form.addRow(self.refine_check)
        form.addRow(self.rings_check)
        form.addRow(self.tracks_check)
        advanced, _ = collapsible("Advanced", [
            (form_label(n, w.toolTip()), w) for n, w in [
                ("smoothing", self.sigma), ("edge margin", self.edge_margin), ("track step", self.r_max),
                ("track class", self.track_class), ("wall pixels", self.walls_per_frame),
                ("tip blur", self.tip_sigma), ("precision", self.precision_combo)]])
        layout = scroll_body(self)
        layout.addLayout(form)
        layout.addWidget(advanced)
        layout.addWidget(self.detect_button)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def settings(self) -> dict:
        threshold = self.threshold.value()
        return {"method": self.method_combo.currentText(), "threshold": threshold if threshold > 0 else None,
                "sigma": self.sigma.value(), "edge_margin": self.edge_margin.value(),
                "refine": self.refine_check.isChecked(), "rings": self.rings_check.isChecked(),
                "tracks": self.tracks_check.isChecked(), "r_max": self.r_max.value(),
                "track_class": None if self.track_class.value() < 0 else self.track_class.value(),
                "walls_per_frame": self.walls_per_frame.value(), "tip_sigma": self.tip_sigma.value(),
                "precision": self.precision_combo.currentText()}

    def run(self):
        """Detect in the background; returns the worker."""
        layer = self.image_picker.layer()
        if layer is None:
            raise ValueError("open a movie first")
        movie = np.asarray(layer.data, dtype=np.float32)
        if movie.ndim not in (2, 3):
            raise ValueError(f"image {layer.name!r} has shape {movie.shape}; expected (T, Y, X) or (Y, X)")
        self._image = layer
        self.detect_button.setEnabled(False)
        return self.job.start(detect_job, movie, self.settings(), total=0)

    def _on_yield(self, message) -> None:
        self.status.setText(f"{message}…")

    def _add_points(self, table, name: str, **kwargs):
        image = self._image
        data = table[["frame", "y", "x"]].to_numpy(dtype=np.float64)
        if image.ndim == 2:
            data = data[:, 1:]
        self._replace(name)
        extra = {"units": image.units} if hasattr(image, "units") else {}
        self._made[name] = self.viewer.add_points(data, features=table.reset_index(drop=True), name=name, scale=image.scale,
                                      translate=image.translate, border_width=0, **kwargs, **extra)
        return self._made[name]

    def _replace(self, name: str) -> None:
        """Remove the layer this dock made under ``name`` last time (never someone else's layer)."""
        old = self._made.pop(name, None)
        if old is not None and old in self.viewer.layers:
            self.viewer.layers.remove(old)

    def _on_return(self, result) -> None:
        sites, hollows, tracks = result
        kind = "walls" if self.method_combo.currentText() == "walls (PFM)" else "sites"
        # wall sites are contiguous pixels: 1-px points draw the wall line instead of a 3-px band
        layer = self._add_points(sites, kind, size=1 if kind == "walls" else 3, face_color="#40c0ff")
        self.layer = layer
        if "class" in sites and sites["class"].nunique() > 1:
            from . import _colours as colours

            layer.face_color = colours.row_colours(layer.features, colours.colour_scale(layer.features, "class"))
        message = f"{len(sites)} {kind} in {sites['frame'].nunique() if len(sites) else 0} frame(s)"
        if hollows is not None and len(hollows):
            self._add_points(hollows, "ring centres", size=3, face_color="#ff40ff", symbol="diamond")
            message += f"; {len(hollows)} ring centres"
        if tracks is not None and len(tracks):
            self._replace("tracks")
            self._made["tracks"] = self.viewer.add_tracks(tracks, name="tracks", scale=self._image.scale,
                                                          translate=self._image.translate)
            message += f"; {len(np.unique(tracks[:, 0]))} tracks"
        self.viewer.layers.selection.active = layer
        self.status.setText(message)

    def _on_finish(self) -> None:
        self.detect_button.setEnabled(True)
