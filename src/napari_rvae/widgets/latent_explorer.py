"""Latent explorer dock: the latent scatter linked both ways with the viewer.

Works on any Points layer whose ``features`` hold latent columns
(``angle, dx, dy, z0, z1 …``, DESIGN §3). Gestures:

* click an empty spot → the window decoded at that latent point (angle and
  shift from the sliders), in the dock and as the "decoded window" layer;
* click a point → its real window beside its reconstruction; the viewer
  jumps to its frame and centres on it;
* hover → live decode (throttled);
* lasso / rectangle → ``selected`` column and the layer's selection;
  "Assign cluster" writes the ``cluster`` column;
* points selected in the viewer and the current frame's sites are drawn as
  overlays in the plot.

The model is reached only through a *decode callable*
``decode(z, angle, dx, dy) -> (w, w) array`` with ``z`` of shape (k,)
(the ``z0 … z{k-1}`` values), ``angle`` in radians and ``dx, dy`` in
pixels, the units of the sites table. See :meth:`LatentExplorer.set_decoder`.
"""

from __future__ import annotations

from typing import Callable

import napari
import numpy as np
import pandas as pd
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QRadioButton,
)
from superqt import QLabeledDoubleSlider

from ..io.sites import latent_columns
from . import _colours as colours
from ._common import (LayerPicker, button, collapsible, form_label, has_latents, scroll_body, set_widget_values,
                      spin, tip, widget_values)
from ._dock import RvaeDock, StatusLabel
from ._explorer_viewer import DECODED_LAYER, SELECTION_LAYER, ViewerSide  # noqa: F401  (the layers' names)
from ._latent_plot import LatentPlot
from ._model_link import model_decoder
from ._state import unwrap
from ._window_panel import WindowPanel
from ._workers import call_safely

Decoder = Callable[[np.ndarray, float, float, float], np.ndarray]


def _z_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in latent_columns(table) if c[:1] == "z"]


def crop_window(movie: np.ndarray, frame: int, y: float, x: float, size: int) -> np.ndarray:
    """The ``size``×``size`` pixels of ``movie`` ((T, Y, X) or (Y, X)) around (y, x); outside is NaN."""
    image = np.asarray(movie[int(frame)] if np.ndim(movie) == 3 else movie, dtype=np.float32)
    top, left = int(round(y)) - size // 2, int(round(x)) - size // 2
    out = np.full((size, size), np.nan, dtype=np.float32)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, image.shape[0]), min(left + size, image.shape[1])
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
    return out


class LatentExplorer(ViewerSide, RvaeDock):
    """The dock. ``decode`` may be given now or later with :meth:`set_decoder`."""

    dock_name = "explore"

    def __init__(self, napari_viewer: napari.Viewer, decode: Decoder | None = None) -> None:
        super().__init__(napari_viewer)
        self.decode: Decoder | None = None
        self.decoded_layer = None
        self.selection_layer = None
        self.layer = None
        self.table = pd.DataFrame()
        self._frames = np.zeros(0, dtype=np.int64)
        self._frame_order = np.zeros(0, dtype=np.intp)
        self._writing = False
        self._selecting = False  # True while the explorer itself sets the layer's selection
        self.selection = np.zeros(0, dtype=bool)  # the plot's selection (lasso / rectangle), all frames
        self._pending_layer_window: np.ndarray | None = None
        self._layer_timer = QTimer(self)
        self._layer_timer.setSingleShot(True)
        self._layer_timer.setInterval(0)
        self._layer_timer.timeout.connect(self._flush_decoded_layer)
        self.last_latent: tuple[float, float] | None = None

        self.points_picker = LayerPicker(napari_viewer, (napari.layers.Points,), "Points layer whose features hold the latents (angle, dx, dy, z0 …)", prefer=has_latents, role="sites")
        self.image_picker = LayerPicker(napari_viewer, (napari.layers.Image,), "Image layer the real windows are cut from (the movie the model was trained on)", allow_none=True, role="movie")
        self.x_combo = tip(QComboBox(), "Feature shown on the horizontal axis")
        self.y_combo = tip(QComboBox(), "Feature shown on the vertical axis")
        self.colour_combo = tip(QComboBox(), "Feature that colours the points (angle uses a cyclic colormap)")

        self.mode_group = QButtonGroup(self)
        modes = QHBoxLayout()
        for i, (mode, text, help_text) in enumerate([
            ("pan", "Click / pan", "Left-drag pans, wheel zooms; click a point or an empty spot"),
            ("lasso", "Lasso", "Left-drag draws a free-hand selection"),
            ("rectangle", "Rectangle", "Left-drag draws a rectangular selection"),
        ]):
            radio = tip(QRadioButton(text), help_text)
            radio.setProperty("mode", mode)
            self.mode_group.addButton(radio, i)
            modes.addWidget(radio)
        self.mode_group.button(0).setChecked(True)
        self.mode_group.idToggled.connect(self._on_mode)

        self.plot = LatentPlot(viewer=self.viewer)
        self.panel = WindowPanel()
        self.panel.setMaximumHeight(150)
        self.angle_slider = self._slider(-np.pi, np.pi, "Angle (radians) used when decoding an empty spot")
        self.dx_slider = self._slider(-8.0, 8.0, "Horizontal shift dx (pixels) used when decoding")
        self.dy_slider = self._slider(-8.0, 8.0, "Vertical shift dy (pixels) used when decoding")
        self.cluster_spin = spin(0, 0, 999, "Cluster number written to the selected sites")
        self.status = StatusLabel()

        self.hover_check = tip(QCheckBox("live decode on hover"), "Decode under the mouse as it moves (throttled to 30 ms)")
        self.hover_check.setChecked(True)
        self.frame_check = tip(QCheckBox("emphasise current frame"), "Draw the sites of the viewer's current frame larger")
        self.frame_check.setChecked(True)
        self.layer_check = tip(QCheckBox("decoded window as a layer"), "Also show a clicked decoded window as an image "
                               "layer, placed in the top-left corner of the current view")
        self.layer_check.setChecked(True)
        self.highlight_check = tip(QCheckBox("highlight selected sites"), "Ring the selected sites in the viewer "
                                   "(a 'selected sites' layer on top, visible whatever layer is active)")
        self.highlight_check.setChecked(True)
        self.size_spin = spin(3, 1, 9, "Point size in screen pixels")
        self.window_spin = spin(32, 4, 256, "Window size (pixels) of real windows when no model is loaded")
        self.manifold_check = tip(QCheckBox("decoded manifold background"),
                                  "Draw the windows decoded on a grid over the visible latent plane behind the points")
        self.manifold_grid = spin(10, 2, 30, "Manifold background: decoded windows per side")
        self.manifold_button = button("Redraw background", "Decode the manifold again for the current view", self.draw_manifold)
        advanced, _ = collapsible("Advanced", [
            ("", self.manifold_check), (form_label("grid", self.manifold_grid.toolTip()), self.manifold_grid),
            ("", self.manifold_button),
            ("", self.hover_check), ("", self.frame_check), ("", self.layer_check), ("", self.highlight_check),
            (form_label("point size", "Point size in screen pixels"), self.size_spin),
            (form_label("window", "Window size (pixels) when no model is loaded"), self.window_spin),
        ])

        grid = QGridLayout()
        grid.addWidget(form_label("points", "Points layer with latent features"), 0, 0)
        grid.addWidget(self.points_picker, 0, 1, 1, 3)
        grid.addWidget(form_label("image", "Image layer the real windows are cut from"), 1, 0)
        grid.addWidget(self.image_picker, 1, 1, 1, 3)
        grid.addWidget(form_label("x", "Horizontal axis"), 2, 0)
        grid.addWidget(self.x_combo, 2, 1)
        grid.addWidget(form_label("y", "Vertical axis"), 2, 2)
        grid.addWidget(self.y_combo, 2, 3)
        grid.addWidget(form_label("colour", "Colour column"), 3, 0)
        grid.addWidget(self.colour_combo, 3, 1, 1, 3)
        sliders = QGridLayout()
        for row, (name, slider) in enumerate([("angle", self.angle_slider), ("dx", self.dx_slider), ("dy", self.dy_slider)]):
            sliders.addWidget(form_label(name, slider.toolTip()), row, 0)
            sliders.addWidget(slider, row, 1)
        selection = QHBoxLayout()
        self.clear_button = button("Clear selection", "Deselect all sites", self.clear_selection)
        self.assign_button = button("Assign cluster", "Write the cluster number into the 'cluster' column of the selected sites", self.assign_cluster)
        selection.addWidget(self.clear_button)
        selection.addWidget(self.cluster_spin)
        selection.addWidget(self.assign_button)

        layout = scroll_body(self)
        layout.addLayout(grid)
        layout.addLayout(modes)
        layout.addWidget(self.plot, stretch=3)
        layout.addLayout(selection)
        layout.addWidget(self.panel, stretch=1)
        layout.addLayout(sliders)
        layout.addWidget(advanced)
        layout.addWidget(self.status)

        self.points_picker.layer_changed.connect(self.set_layer)
        for combo in (self.x_combo, self.y_combo):
            combo.currentTextChanged.connect(lambda *_: self.redraw())
        self.colour_combo.currentTextChanged.connect(lambda *_: self.recolour())
        self.plot.clicked.connect(self._on_click)
        self.plot.hovered.connect(self._on_hover)
        self.plot.polygon_selected.connect(self.select_sites)
        for slider in (self.angle_slider, self.dx_slider, self.dy_slider):
            slider.valueChanged.connect(self._on_slider)
        self.size_spin.valueChanged.connect(self.plot.set_point_size)
        self.manifold_check.toggled.connect(lambda on: call_safely("Decoding the manifold", self.draw_manifold) if on
                                            else self.plot.set_background(None))
        self.frame_check.toggled.connect(lambda *_: self.show_current_frame())
        self.hover_check.toggled.connect(lambda on: setattr(self.plot, "hover_enabled", bool(on)))
        self.highlight_check.toggled.connect(lambda *_: self._update_selection_layer())
        self.viewer.dims.events.current_step.connect(self.show_current_frame)
        self.link = self.flow
        self.link.model_changed.connect(self._on_model)
        if decode is not None:
            self.set_decoder(decode)
        elif self.link.model is not None:
            self._on_model(self.link.model)
        self.set_layer(self.points_picker.layer())
        self._inputs = {"x": self.x_combo, "y": self.y_combo, "colour": self.colour_combo,
                        "hover": self.hover_check, "layer": self.layer_check, "highlight": self.highlight_check,
                        "point_size": self.size_spin}
        self.flow.register(self.dock_name, self)

    def dock_state(self) -> dict:
        return widget_values(self._inputs)

    def restore_state(self, state: dict) -> None:
        set_widget_values(self._inputs, state)

    # ------------------------------------------------------------- set-up
    def _slider(self, lo: float, hi: float, tooltip: str) -> QLabeledDoubleSlider:
        slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        slider.setRange(lo, hi)
        slider.setValue(0.0)
        slider.setToolTip(tooltip)
        return slider

    def set_decoder(self, decode: Decoder | None, max_shift: float | None = None) -> None:
        """Use ``decode(z, angle, dx, dy) -> (w, w)`` for decoded windows (None disconnects).

        ``z`` is a float array (k,) with the values of ``z0 … z{k-1}``;
        ``angle`` is in radians; ``dx, dy`` in pixels. ``max_shift`` sets the
        shift sliders' range (pixels).
        """
        if decode is not None and not callable(decode):
            raise ValueError("decode must be a callable decode(z, angle, dx, dy) -> (w, w) image")
        self.decode = decode
        if max_shift:
            for slider in (self.dx_slider, self.dy_slider):
                slider.setRange(-float(max_shift), float(max_shift))
        self.status.setText("model connected: click the plot to decode" if decode else "no model: clicks show real windows only")

    def _on_model(self, model) -> None:
        """A model was trained or loaded in this viewer: decode with it."""
        if model is None:
            self.set_decoder(None)
            return
        window = int(model.config.window[-1])
        self.window_spin.setValue(window)
        self.set_decoder(model_decoder(model), max_shift=max(1.0, window / 4))

    def draw_manifold(self) -> np.ndarray | None:
        """Decode a grid over the visible plane and draw it behind the points; returns the mosaic."""
        if not self.manifold_check.isChecked():
            self.manifold_check.setChecked(True)  # draws through the toggle
            return self.plot.background_image
        if self.decode is None:
            raise ValueError("no model connected; train or load a model first")
        (x0, x1), (y0, y1) = self.plot.box.viewRange()
        d = self.manifold_grid.value()
        xs = x0 + (np.arange(d) + 0.5) * (x1 - x0) / d
        ys = y0 + (np.arange(d) + 0.5) * (y1 - y0) / d
        tiles = [[np.asarray(self.decode(*self.latent_point(x, y)), dtype=np.float32) for x in xs] for y in ys[::-1]]
        mosaic = np.block(tiles)  # row 0 = top = largest y
        self.plot.set_background(mosaic, (x0, y0, x1 - x0, y1 - y0))
        return mosaic

    def set_layer(self, layer) -> None:
        """Explore ``layer`` (a Points layer) — normally chosen with the picker."""
        layer = unwrap(layer)
        if self.layer is not None:
            self._disconnect(self.layer)
        self.layer = layer
        if layer is None:
            self.table = pd.DataFrame()
            self._fill_combos()
            self.plot.set_points(np.zeros(0), np.zeros(0), np.zeros(0, int), np.zeros((1, 4)))
            return
        layer.events.features.connect(self._on_features)
        layer.selected_data.events.items_changed.connect(self._on_viewer_selection)
        self._load_table()

    def _disconnect(self, layer) -> None:
        for emitter, slot in ((layer.events.features, self._on_features),
                              (layer.selected_data.events.items_changed, self._on_viewer_selection)):
            try:
                emitter.disconnect(slot)
            except Exception:  # already gone: nothing to undo
                pass

    def _load_table(self) -> None:
        layer = self.layer
        self.table = layer.features.reset_index(drop=True)
        data = np.asarray(layer.data)
        if data.ndim == 2 and data.shape[1] >= 3:
            self._frames = np.round(data[:, 0]).astype(np.int64)
        elif "frame" in self.table:
            self._frames = self.table["frame"].to_numpy(dtype=np.int64)
        else:
            self._frames = np.zeros(len(self.table), dtype=np.int64)
        self._frame_order = np.argsort(self._frames, kind="stable")
        if "selected" in self.table and self.table["selected"].dtype == bool:
            self.selection = self.table["selected"].to_numpy(copy=True)
        else:
            self.selection = np.zeros(len(self.table), dtype=bool)
        self._fill_combos()
        self.redraw()

    def _fill_combos(self) -> None:
        numeric = colours.numeric_columns(self.table) if len(self.table.columns) else []
        latents = latent_columns(self.table) if len(self.table.columns) else []
        zs = [c for c in latents if c[:1] == "z"]
        preferred = zs + [c for c in latents if c not in zs] + [c for c in numeric if c not in latents]
        x_default = preferred[0] if preferred else ""
        y_default = preferred[1] if len(preferred) > 1 else x_default
        colour_default = "angle" if "angle" in self.table else ("frame" if "frame" in self.table else x_default)
        fresh_latents = bool(zs) and not getattr(self, "_had_latents", False)  # e.g. training just finished
        self._had_latents = bool(zs)
        for combo, options, default in ((self.x_combo, preferred, x_default), (self.y_combo, preferred, y_default),
                                        (self.colour_combo, list(self.table.columns), colour_default)):
            keep = "" if fresh_latents else combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([str(o) for o in options])
            combo.setCurrentText(keep if keep in options else default)
            combo.blockSignals(False)

    # ------------------------------------------------------------ drawing
    def redraw(self) -> None:
        """Re-read the axes and colour column and redraw the scatter."""
        x_name, y_name = self.x_combo.currentText(), self.y_combo.currentText()
        if self.layer is None or not x_name or not y_name or not len(self.table):
            return
        scale = colours.colour_scale(self.table, self.colour_combo.currentText() or x_name,
                                     symmetry=self.flow.angle_symmetry())
        self.plot.set_points(colours.plot_values(self.table, x_name), colours.plot_values(self.table, y_name),
                             colours.level_indices(self.table, scale), colours.lookup_table(scale))
        self.plot.setLabel("bottom", x_name)
        self.plot.setLabel("left", y_name)
        if self.selection.any():
            self.plot.show_selection(np.flatnonzero(self.selection))
        else:
            self.plot.show_selection(np.fromiter(self.layer.selected_data, dtype=np.intp))
        self.show_current_frame()

    def recolour(self) -> None:
        """Apply the colour column (the one full recolour; gestures use overlays)."""
        column = self.colour_combo.currentText()
        if self.layer is None or column not in self.table:
            return
        scale = colours.colour_scale(self.table, column, symmetry=self.flow.angle_symmetry())
        self.plot.set_colours(colours.level_indices(self.table, scale), colours.lookup_table(scale))
        self.show_current_frame()

    def frame_sites(self, frame: int) -> np.ndarray:
        """Indices of the sites in ``frame``."""
        lo, hi = np.searchsorted(self._frames[self._frame_order], [frame, frame + 1])
        return self._frame_order[lo:hi]

    def show_current_frame(self, *_event) -> None:
        """Emphasise the sites of the viewer's current frame (and highlight its selected sites)."""
        if self.layer is None or not len(self._frames):
            return
        in_frame = self.frame_sites(self.current_frame())
        self.plot.show_frame(in_frame if self.frame_check.isChecked() else np.zeros(0, dtype=np.intp))
        if self.selection.any():
            self._highlight_in_viewer(in_frame)
        if self.selection.any() or self.selection_layer is not None:
            self._update_selection_layer()

    def current_frame(self) -> int:
        """The frame (data index of the points layer) the viewer is showing."""
        if self.layer is None or self.layer.ndim < 3:
            return 0
        return int(np.round(self.layer.world_to_data(self.viewer.dims.point)[0]))

    # ----------------------------------------------------------- gestures
    def _on_mode(self, *_args) -> None:
        self.plot.box.mode = self.mode_group.checkedButton().property("mode")

    def _on_click(self, x: float, y: float, index: int) -> None:
        if index >= 0:
            call_safely("Showing the site", self.show_site, index)
        elif self.layer is not None and len(self.table.columns) and not _z_columns(self.table):
            self.status.setText(f"'{self.layer.name}' has no latents yet: train a model (Train VAE) and the "
                                "plot shows them; click a site to see its window")
        else:
            call_safely("Decoding", self.decode_at, x, y, True)

    def _on_hover(self, x: float, y: float) -> None:
        if (self.decode is not None and self.hover_check.isChecked() and self.plot.box.mode == "pan"
                and self._decodable()):
            call_safely("Decoding", self.decode_at, x, y, False)

    def _decodable(self) -> bool:
        """Whether both axes are model inputs (z…, angle, dx, dy)."""
        names = (self.x_combo.currentText(), self.y_combo.currentText())
        return bool(_z_columns(self.table)) and all(n in ("angle", "dx", "dy") or (n[:1] == "z" and n[1:].isdigit())
                                                   for n in names)

    def _on_slider(self, *_args) -> None:
        if self.last_latent is not None:
            call_safely("Decoding", self.decode_at, *self.last_latent, False)

    def latent_point(self, x: float, y: float) -> tuple[np.ndarray, float, float, float]:
        """The model inputs ``(z, angle, dx, dy)`` at plot position (x, y).

        The two axis features take the clicked values; angle and shifts not on
        an axis come from the sliders; other ``z`` are held at 0 (the prior mean).
        """
        z = np.zeros(len(_z_columns(self.table)), dtype=np.float32)
        values = {"angle": self.angle_slider.value(), "dx": self.dx_slider.value(), "dy": self.dy_slider.value()}
        for name, value in ((self.x_combo.currentText(), x), (self.y_combo.currentText(), y)):
            if name in values:
                values[name] = float(value)
            elif name[:1] == "z" and name[1:].isdigit() and int(name[1:]) < len(z):
                z[int(name[1:])] = value
            else:
                raise ValueError(f"axis {name!r} is not a latent; choose z0, z1 … (or angle, dx, dy) to decode")
        return z, values["angle"], values["dx"], values["dy"]

    def decode_at(self, x: float, y: float, to_layer: bool = True) -> np.ndarray:
        """Decode the window at plot position (x, y); show it in the dock (and as a layer)."""
        if self.decode is None:
            raise ValueError("no model connected; train or load a model in the Train VAE dock")
        z, angle, dx, dy = self.latent_point(x, y)
        window = np.asarray(self.decode(z, angle, dx, dy), dtype=np.float32)
        self.last_latent = (float(x), float(y))
        self.plot.show_marker(x, y)
        self.panel.set_image("decoded", window, f"decoded ({x:.2f}, {y:.2f})")
        if to_layer and self.layer_check.isChecked():
            # the dock shows it now; the layer follows as soon as the click returns (napari redraws)
            self._pending_layer_window = window
            self._layer_timer.start()
        return window

    def show_site(self, index: int) -> None:
        """Show site ``index``'s real window and reconstruction; jump the viewer to it."""
        row = self.table.iloc[int(index)]
        coords = np.asarray(self.layer.data[int(index)], dtype=np.float64)
        world = np.asarray(self.layer.data_to_world(coords), dtype=np.float64)
        if len(world) >= 3:
            self.viewer.dims.set_point(self.viewer.dims.ndim - 3, world[-3])
        camera = self.viewer.scene.camera if hasattr(self.viewer, "scene") else self.viewer.camera
        camera.center = tuple(world[-2:])
        self.layer.selected_data = {int(index)}
        self.plot.show_marker(self.plot.x[index], self.plot.y[index])
        size = self.window_spin.value()
        reconstruction = None
        if self.decode is not None and _z_columns(self.table):
            z = row[_z_columns(self.table)].to_numpy(dtype=np.float32)
            get = lambda name: float(row[name]) if name in row else 0.0  # noqa: E731
            reconstruction = np.asarray(self.decode(z, get("angle"), get("dx"), get("dy")), dtype=np.float32)
            size = reconstruction.shape[-1]
        image_layer = self.image_picker.layer()
        source = (getattr(self.flow.model, "normalisation", None) or {}).get("source")
        if source == "map" and self.flow.layer("map") is not None:  # compare like with like
            image_layer = self.flow.layer("map")
        real = None
        if image_layer is not None:
            real = crop_window(np.asarray(image_layer.data), self._frames[index], coords[-2], coords[-1], size)
        self.panel.set_image("window", real, f"site {index} (frame {self._frames[index]})")
        self.panel.set_image("reconstruction", reconstruction)
