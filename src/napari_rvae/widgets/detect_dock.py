"""Detect dock: atoms (or PFM domain walls) → a Points layer with the sites table as features.

Everything is done by :mod:`napari_rvae.detect`; the dock gathers the
settings, runs detection in the background and adds the layers: the sites
(``frame, y, x`` points, features ``kind, class, intensity …``), the atom
probability map when the shipped atom finder ran (windows are cut from it),
optionally ring centres (hollow sites) and tracks.

Before anything is detected the dock shows the movie's lattice (atom spacing,
kind, contrast), estimated in the background; the spacing can be typed over
(``auto`` = the estimate). After detection the plausibility findings (too few
atoms for the lattice, too close pairs …) are shown in the dock and as a
notification.
"""

from __future__ import annotations

import warnings

import napari
import numpy as np
from napari.utils.notifications import show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QLineEdit

from ..io.units import pixel_size_nm
from ._common import (LayerPicker, button, collapsible, dspin, form_label, scroll_body, set_widget_values, spin,
                      tip, widget_values)
from ._layers import LayerMaker, geometry
from ._dock import RvaeDock, StatusLabel, progress_bar
from ._state import MAP_NAME, PRODUCT_KEY
from ._workers import BackgroundJob, call_safely

METHODS = {
    "auto": "the shipped atom finder at the lattice's scale (the atom probability map is kept for the windows)",
    "model": "the shipped atom finder: peaks of its atom probability map",
    "peaks": "peak finding on the smoothed raw image (no model needed)",
    "threshold": "threshold + connected components of the normalised image",
    "walls (PFM)": "domain map of a PFM phase movie, then wall pixels as sites",
}
NO_LATTICE = ("no atomic lattice found ({note}); if the frames hold atoms, type their spacing in pixels "
              "(spacing), or choose 'walls (PFM)' for a PFM phase movie")


def lattice_job(movie):
    """Background job: the movie's lattice (:func:`~napari_rvae.detect.lattice.estimate_lattice`)."""
    from ..detect.lattice import estimate_lattice

    return estimate_lattice(movie)


def detect_job(movie, settings: dict):
    """Background job: lattice, atom map (model methods), detection, optional rings and tracks.

    Yields stage names; returns ``dict(sites, hollows, tracks, maps, lattice, record)``.
    """
    from ..detect import detect_atoms, find_walls
    from ..detect.find import AUTO_METHOD, atom_map, movie_lattice
    from ..detect.lattice import as_detected

    out = {"sites": None, "hollows": None, "tracks": None, "maps": None, "lattice": None, "record": {}}
    if settings["method"] == "walls (PFM)":
        yield "finding walls"
        tip_sigma = settings.get("tip_sigma", 1.0)
        out["sites"] = find_walls(movie, n_per_frame=settings["walls_per_frame"] or None,
                                  tip_sigma=tip_sigma if tip_sigma > 0 else None, seed=0,
                                  unit=settings.get("value_unit"), pixel_size_nm=settings.get("pixel_size_nm"))
        out["record"] = {"method": "walls (PFM)"}
        return out
    spacing = settings.get("spacing") or None
    yield "estimating the lattice"
    lattice = movie_lattice(movie, spacing=spacing, contrast=settings.get("contrast", "auto"))
    out["lattice"] = lattice
    if not lattice.found and not lattice.candidate:
        raise ValueError(NO_LATTICE.format(note=lattice.note or "no periodic atom contrast"))
    chosen = AUTO_METHOD if settings["method"] == "auto" else settings["method"]
    if chosen == "model" and not (settings.get("chunk") or settings.get("dask_address")):
        yield "atom probability map"
        out["maps"] = atom_map(movie, lattice=lattice, precision=settings.get("precision", "auto"))
    if settings.get("chunk") or settings.get("dask_address"):
        yield "detecting atoms in chunks (dask)"
        out["sites"], out["record"] = _detect_in_chunks(movie, settings, lattice)
        out["lattice"] = as_detected(out["record"], lattice)
        return (yield from _after_detection(out, out["sites"], settings))
    yield "detecting atoms"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the findings are shown from the record instead
        sites = detect_atoms(movie, method=settings["method"], probabilities=out["maps"], lattice=lattice,
                             threshold=settings["threshold"], sigma=settings.get("sigma") or None,
                             edge_margin=settings["edge_margin"], refine=settings["refine"],
                             precision=settings.get("precision", "auto"), contrast=settings.get("contrast", "auto"))
    out["record"] = dict(sites.attrs.get("detection") or {})
    out["lattice"] = as_detected(sites, lattice)  # e.g. a honeycomb the autocorrelation saw as hexagonal
    return (yield from _after_detection(out, sites, settings))


def _after_detection(out: dict, sites, settings: dict) -> dict:
    """Rings and tracks on the sites of the whole movie, when asked (yields the stages)."""
    from ..detect import find_rings, link_tracks, tracks_layer_data

    if settings["rings"] and len(sites):
        yield "finding rings"
        sites, out["hollows"] = find_rings(sites)
    if settings["tracks"] and len(sites) and sites["frame"].nunique() > 1:
        yield "linking tracks"
        sites = link_tracks(sites, r_max=settings["r_max"], classes=settings["track_class"])
        out["tracks"] = tracks_layer_data(sites)
    out["sites"] = sites
    return out


def _detect_in_chunks(movie, settings: dict, lattice):
    """Atoms chunk by chunk on local worker processes or the dask cluster at ``settings["dask_address"]``;
    the partitions go to a temporary folder (on a cluster, one the workers share with this computer)."""
    import tempfile

    from ..chunks import ChunkSettings, detect_atoms_chunked, run_record
    from ..io.sites import read_sites

    graph = ChunkSettings(chunk=settings.get("chunk") or None, address=settings.get("dask_address") or None)
    with tempfile.TemporaryDirectory(prefix="napari-rvae-chunks-") as tmp:
        folder = detect_atoms_chunked(movie, f"{tmp}/sites.parquet", settings=graph, lattice=lattice,
                                      method=settings["method"], threshold=settings["threshold"],
                                      sigma=settings.get("sigma") or None, edge_margin=settings["edge_margin"],
                                      refine=settings["refine"], precision=settings.get("precision", "auto"),
                                      contrast=settings.get("contrast", "auto"))
        record = run_record(folder)
        sites = read_sites(folder)
    sites.attrs["detection"] = record
    return sites, record


def looks_like_phase(layer) -> bool:
    """A PFM phase channel: its values are an angle (degrees or radians) or its name says phase."""
    metadata = getattr(layer, "metadata", None) or {}
    unit = str(metadata.get("value_unit") or "").lower()
    name = f"{getattr(layer, 'name', '')} {metadata.get('channel') or ''}".lower()
    return unit in ("deg", "degree", "degrees", "°", "rad", "radian", "radians") or "phase" in name


class Detect(RvaeDock):
    """The dock."""

    dock_name = "detect"

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(napari_viewer)
        self.layers = LayerMaker(self)
        self.layer = None
        self.job = BackgroundJob("Detecting sites", on_yield=self._on_yield, on_return=self._on_return,
                                 on_finish=self._on_finish, uses_torch=False, parent=self)
        self.lattice_job = BackgroundJob("Estimating the lattice", on_return=self._on_lattice, uses_torch=False,
                                         parent=self)
        self.image_picker = LayerPicker(napari_viewer, (napari.layers.Image,),
                                        "Movie to detect in (atoms bright or dark), or a PFM phase movie", role="movie")
        self.lattice_label = QLabel("lattice: —")
        self.lattice_label.setWordWrap(True)
        self.lattice_label.setToolTip("What the movie's autocorrelation says: nearest-neighbour atom spacing, "
                                      "lattice kind and atom contrast (estimated in the background)")
        self.spacing = dspin(0.0, 0.0, 500.0, "Nearest-neighbour atom spacing in pixels; 'auto' = the estimate "
                             "above. Every scale-dependent setting (smoothing, peak distance, window size) "
                             "follows from it", 0.25, 2)
        self.spacing.setSpecialValueText("auto")
        self.method_combo = tip(QComboBox(), "; ".join(f"{k}: {v}" for k, v in METHODS.items()))
        self.method_combo.addItems(list(METHODS))
        self.threshold = dspin(0.0, 0.0, 1.0, "Relative peak height (peaks) or probability threshold (threshold, "
                               "model); 'auto' = the method's default", 0.05)
        self.threshold.setSpecialValueText("auto")
        self.refine_check = tip(QCheckBox("sub-pixel refinement"), "Fit a 2D Gaussian to every atom (slower, more precise)")
        self.refine_check.setChecked(True)
        self.rings_check = tip(QCheckBox("rings / hollow sites"), "Bond graph → 5-8 membered rings; ring centres as hollow sites")
        self.tracks_check = tip(QCheckBox("tracks"), "Link sites frame to frame (e.g. hopping Si dopants) into a Tracks layer")
        self.sigma = dspin(0.0, 0.0, 20.0, "Smoothing before peak finding (pixels); 'auto' = from the spacing", 0.5)
        self.sigma.setSpecialValueText("auto")
        self.edge_margin = dspin(2.0, 0.0, 100.0, "Drop atoms closer than this to the border (pixels)", 1.0)
        self.contrast_combo = tip(QComboBox(), "Atom contrast: auto reads it from the frames; dark = ABF/BF "
                                  "(the frames are inverted for detection)")
        self.contrast_combo.addItems(["auto", "bright", "dark"])
        self.r_max = dspin(5.0, 0.5, 200.0, "Largest step of a site between frames (pixels)", 0.5)
        self.track_class = spin(1, -1, 99, "Class to track (-1 = all; 1 = the bright impurity class)")
        self.walls_per_frame = spin(0, 0, 1_000_000, "Walls: at most this many wall pixels per frame (0 = all)")
        self.tip_sigma = dspin(1.0, 0.0, 10.0, "Walls: tip blur σ (pixels) of the fit that recovers small blurred "
                               "domains; 0 = threshold the phase only (faster)", 0.25)
        self.precision_combo = tip(QComboBox(), "Atom finder arithmetic. auto: bfloat16 where this CPU computes it "
                                   "natively (about 2× faster, the same atoms), else float32; int8 is about 2× "
                                   "faster on long movies (calibrated on this movie, a few seconds once)")
        self.precision_combo.addItems(["auto", "float32", "bfloat16", "int8"])
        self.chunk = spin(0, 0, 100_000, "Long movies: detect in chunks of this many frames on worker processes "
                          "(bounded memory, the same sites; a multiple of 4 keeps the atom finder bit-identical). "
                          "0 = the whole movie at once in this process", 4)
        self.chunk.setSpecialValueText("whole movie")
        self.dask_address = tip(QLineEdit(), "A dask.distributed scheduler (HOST:PORT) to run the chunks on; "
                                "empty = local worker processes. The workers must see this computer's temporary "
                                "folder (docs/large-data.md)")
        self.dask_address.setPlaceholderText("local workers")
        self.detect_button = button("Detect", "Find the sites of every frame", self.run)
        self.progress = progress_bar(self.job)
        self.findings = QLabel("")
        self.findings.setWordWrap(True)
        self.findings.setToolTip("What looks implausible in the detection, with the suggested fix")
        self.findings.setStyleSheet("color: #ffb347;")
        self.status = StatusLabel()
        form = QFormLayout()
        form.addRow(form_label("image", "Movie"), self.image_picker)
        form.addRow(self.lattice_label)
        form.addRow(form_label("spacing", self.spacing.toolTip()), self.spacing)
        form.addRow(form_label("method", "Detection method"), self.method_combo)
        form.addRow(form_label("threshold", self.threshold.toolTip()), self.threshold)
        form.addRow(self.refine_check)
        form.addRow(self.rings_check)
        form.addRow(self.tracks_check)
        advanced, _ = collapsible("Advanced", [
            (form_label(n, w.toolTip()), w) for n, w in [
                ("smoothing", self.sigma), ("edge margin", self.edge_margin), ("contrast", self.contrast_combo),
                ("track step", self.r_max), ("track class", self.track_class), ("wall pixels", self.walls_per_frame),
                ("tip blur", self.tip_sigma), ("precision", self.precision_combo), ("chunk frames", self.chunk),
                ("dask cluster", self.dask_address)]])
        layout = scroll_body(self)
        layout.addLayout(form)
        layout.addWidget(advanced)
        layout.addWidget(self.detect_button)
        layout.addWidget(self.progress)
        layout.addWidget(self.findings)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self._inputs = {"spacing": self.spacing, "method": self.method_combo, "threshold": self.threshold,
                        "refine": self.refine_check, "rings": self.rings_check, "tracks": self.tracks_check,
                        "sigma": self.sigma, "edge_margin": self.edge_margin, "contrast": self.contrast_combo,
                        "r_max": self.r_max, "track_class": self.track_class,
                        "walls_per_frame": self.walls_per_frame, "tip_sigma": self.tip_sigma,
                        "precision": self.precision_combo, "chunk": self.chunk, "dask_address": self.dask_address}
        self._method_chosen = False
        self.method_combo.activated.connect(lambda *_: setattr(self, "_method_chosen", True))
        self._lattice_timer = QTimer(self)
        self._lattice_timer.setSingleShot(True)
        self._lattice_timer.setInterval(300)
        self._lattice_timer.timeout.connect(lambda: call_safely("Estimating the lattice", self.estimate_lattice))
        self.image_picker.layer_changed.connect(lambda *_: self._lattice_timer.start())
        self._lattice_timer.start()
        self.flow.register(self.dock_name, self)

    # ------------------------------------------------------------ settings
    def settings(self) -> dict:
        threshold = self.threshold.value()
        layer = self.image_picker.layer()
        metadata = getattr(layer, "metadata", None) or {}
        return {"method": self.method_combo.currentText(), "threshold": threshold if threshold > 0 else None,
                "spacing": self.spacing.value() or None, "sigma": self.sigma.value() or None,
                "edge_margin": self.edge_margin.value(), "contrast": self.contrast_combo.currentText(),
                "refine": self.refine_check.isChecked(), "rings": self.rings_check.isChecked(),
                "tracks": self.tracks_check.isChecked(), "r_max": self.r_max.value(),
                "track_class": None if self.track_class.value() < 0 else self.track_class.value(),
                "walls_per_frame": self.walls_per_frame.value(), "tip_sigma": self.tip_sigma.value(),
                "precision": self.precision_combo.currentText(), "value_unit": metadata.get("value_unit"),
                "chunk": self.chunk.value() or None, "dask_address": self.dask_address.text().strip() or None,
                "pixel_size_nm": None if layer is None else pixel_size_nm(layer.scale, [str(u) for u in layer.units])}

    def dock_state(self) -> dict:
        return widget_values(self._inputs)

    def restore_state(self, state: dict) -> None:
        set_widget_values(self._inputs, state)
        self._method_chosen = True

    # ------------------------------------------------------------ lattice
    def movie(self) -> np.ndarray:
        layer = self.image_picker.layer()
        if layer is None:
            raise ValueError("open a movie first (File > Open, or File > Open Sample > napari-rvae)")
        movie = np.asarray(layer.data, dtype=np.float32)
        if movie.ndim not in (2, 3):
            raise ValueError(f"image {layer.name!r} has shape {movie.shape}; expected (T, Y, X) or (Y, X)")
        return movie

    def estimate_lattice(self):
        """Estimate the chosen movie's lattice in the background; returns the worker (or None)."""
        if self.image_picker.layer() is None or self.lattice_job.running:
            return None
        self._lattice_for = self.image_picker.layer()
        self.lattice_label.setText("lattice: estimating…")
        return self.lattice_job.start(lattice_job, self.movie())

    def _on_lattice(self, lattice) -> None:
        if self._lattice_for is not self.image_picker.layer():  # the movie changed meanwhile
            self._lattice_timer.start()
            return
        if looks_like_phase(self._lattice_for):
            if not self._method_chosen:
                self.method_combo.setCurrentText("walls (PFM)")
            self.lattice_label.setText("lattice: none looked for — a PFM phase movie: walls are detected")
            return
        self.flow.set_lattice(lattice)
        self.lattice_label.setText(f"lattice: {lattice.summary()}")

    # ------------------------------------------------------------ detection
    def run(self):
        """Detect in the background; returns the worker."""
        layer = self.image_picker.layer()
        self._settings = self.settings()
        lazy = layer is not None and not isinstance(layer.data, np.ndarray) and getattr(layer.data, "ndim", 0) == 3
        # a lazy (dask) movie stays lazy for a chunked run: the chunks read their own frames
        movie = layer.data if lazy and (self._settings["chunk"] or self._settings["dask_address"]) else self.movie()
        self._image = layer
        self.findings.setText("")
        self.detect_button.setEnabled(False)
        return self.job.start(detect_job, movie, self._settings, total=4)

    def _on_yield(self, message) -> None:
        self.status.setText(f"{message}…")

    def _add_points(self, key: str, table, name: str, role: str | None = None, **kwargs):
        image = self._image
        data = table[["frame", "y", "x"]].to_numpy(dtype=np.float64)
        if image.ndim == 2:
            data = data[:, 1:]
        metadata = {PRODUCT_KEY: key}
        if role:
            metadata["napari_rvae_role"] = role
        return self.layers.add(key, "points", data, name=name, features=table.reset_index(drop=True),
                               border_width=0, metadata=metadata, **geometry(image, data.shape[1]), **kwargs)

    def _on_return(self, result):
        """Show the result in steps (one layer per event-loop turn: the GUI never waits long)."""
        sites = result["sites"]
        kind = "walls" if self._settings["method"] == "walls (PFM)" else "sites"
        if result["maps"] is not None:
            self._add_map(result["maps"])
            yield
        # wall sites are contiguous pixels: 1-px points draw the wall line instead of a 3-px band
        colour = "#40c0ff"
        if "class" in sites and sites["class"].nunique() > 1:
            from . import _colours as colours

            colour = colours.row_colours(sites, colours.colour_scale(sites, "class"))
        layer = self._add_points(kind, sites, kind, role="sites", size=1 if kind == "walls" else 3, face_color=colour)
        if layer is None:
            self.status.setText("cancelled: nothing was replaced")
            return
        self.layer = layer
        self.flow.set_layer("sites", layer)
        message = f"{len(sites)} {kind} in {sites['frame'].nunique() if len(sites) else 0} frame(s)"
        if result["hollows"] is not None and len(result["hollows"]):
            yield
            self._add_points("ring centres", result["hollows"], "ring centres", size=3, face_color="#ff40ff",
                             symbol="diamond")
            message += f"; {len(result['hollows'])} ring centres"
        tracks = result["tracks"]
        if tracks is not None and len(tracks):
            yield
            self.layers.add("tracks", "tracks", tracks, name="tracks", metadata={PRODUCT_KEY: "tracks"},
                            **geometry(self._image, tracks.shape[1] - 1))
            message += f"; {len(np.unique(tracks[:, 0]))} tracks"
        record = result["record"]
        if result["lattice"] is not None:
            self.flow.set_lattice(result["lattice"])
            self.lattice_label.setText(f"lattice: {result['lattice'].summary()}")
        self.show_findings(list(record.get("findings") or []))
        self.viewer.layers.selection.active = layer
        self.flow.note("detect", {"settings": {k: v for k, v in self._settings.items() if k != "pixel_size_nm"},
                                  "movie": self._image.name, "n_sites": int(len(sites)), "detection": record})
        self.status.setText(message + (f"; atom probability map in '{MAP_NAME}' (windows are cut from it)"
                                       if result["maps"] is not None else ""))

    def _add_map(self, maps) -> None:
        probability = np.ascontiguousarray(1.0 - np.asarray(maps)[:, 0], dtype=np.float32)
        if self._image.ndim == 2:
            probability = probability[0]
        layer = self.layers.add("map", "image", probability, name=MAP_NAME, colormap="inferno", opacity=0.5,
                                blending="additive", contrast_limits=(0.0, 1.0),
                                metadata={PRODUCT_KEY: "map", "napari_rvae_role": "map"}, **geometry(self._image))
        if layer is not None:
            self.flow.set_layer("map", layer)

    def show_findings(self, findings: list[str]) -> None:
        """Findings in the dock (kept) and as one notification."""
        if not findings:
            self.findings.setText("")
            return
        self.findings.setText("Check: " + "\n".join(f"• {f}" for f in findings))
        show_warning("Detection: " + " | ".join(findings))

    def _on_finish(self) -> None:
        self.detect_button.setEnabled(True)
