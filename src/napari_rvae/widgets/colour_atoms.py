"""Colour atoms dock: sites coloured by angle or any latent / feature, same limits in every frame.

Angle uses a cyclic colormap over [−π, π) (the rVAE angle is unbounded, so
it is wrapped first); other columns use limits computed once over all
frames (1st–99th percentile, or typed in), so a value has one colour for
the whole movie. Optionally the column is interpolated between sites into
a per-frame latent map image layer (:mod:`napari_rvae.analysis.latent_maps`).
"""

from __future__ import annotations

import napari
import numpy as np
from napari.utils.colormaps import AVAILABLE_COLORMAPS
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel

from ..analysis.latent_maps import METHODS, iter_latent_maps
from . import _colours as colours
from ._common import (LayerPicker, button, collapsible, dspin, form_label, has_latents, scroll_body,
                      set_widget_values, spin, tip, widget_values)
from ._layers import LayerMaker, geometry
from ._dock import RvaeDock, StatusLabel, progress_bar
from ._state import PRODUCT_KEY
from ._workers import BackgroundJob, call_safely

AUTO = "auto"
COLORMAPS = [AUTO, "twilight_shifted", "twilight", "hsv", "viridis", "magma", "inferno", "turbo", "coolwarm", "gray"]


class ColourAtoms(RvaeDock):
    """The dock."""

    dock_name = "colour"

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(napari_viewer)
        self.scale: colours.ColourScale | None = None
        self.map_layer = None
        self.layers = LayerMaker(self)

        self.points_picker = LayerPicker(napari_viewer, (napari.layers.Points,), "Points layer (sites) to colour",
                                         prefer=has_latents, role="sites")
        self.column_combo = tip(QComboBox(), "Feature that sets each site's colour (angle: cyclic colormap)")
        self.colormap_combo = tip(QComboBox(), "Colormap; 'auto' = cyclic for angle, viridis otherwise, a palette for classes")
        self.colormap_combo.addItems([c for c in COLORMAPS if c == AUTO or c in AVAILABLE_COLORMAPS])
        self.auto_limits = tip(QCheckBox("limits from all frames (1–99 %)"),
                               "Colour limits from the whole movie's values; untick to type them")
        self.auto_limits.setChecked(True)
        self.low = dspin(0.0, -1e9, 1e9, "Value drawn with the colormap's first colour (all frames)", 0.1, 4)
        self.high = dspin(1.0, -1e9, 1e9, "Value drawn with the colormap's last colour (all frames)", 0.1, 4)
        self.bar = QLabel()
        self.bar.setMinimumHeight(16)
        self.bar.setScaledContents(True)
        self.bar.setToolTip("Colour bar: low values left, high values right")
        self.bar_low, self.bar_high = QLabel(""), QLabel("")
        self.bar_high.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.colour_button = button("Colour sites", "Colour the points layer by the chosen column", self.apply)
        self.method_combo = tip(QComboBox(), "Interpolation between sites (linear and cubic stay inside the sites' hull)")
        self.method_combo.addItems(METHODS)
        self.step_spin = spin(2, 1, 32, "Map pixel spacing in image pixels (larger = faster, coarser)", suffix=" px")
        self.map_button = button("Make latent map", "Interpolate the column between sites into an image layer, every frame", self.make_map)
        self.status = StatusLabel()
        self.job = BackgroundJob("Interpolating latent maps", on_yield=self._on_map_frame, on_finish=self._on_map_done, uses_torch=False, parent=self)

        form = QFormLayout()
        form.addRow(form_label("points", "Sites layer"), self.points_picker)
        form.addRow(form_label("colour by", "Column"), self.column_combo)
        form.addRow(form_label("colormap", "Colormap"), self.colormap_combo)
        form.addRow(self.auto_limits)
        limits = QHBoxLayout()
        limits.addWidget(self.low)
        limits.addWidget(self.high)
        form.addRow(form_label("limits", "Low and high colour limits"), limits)
        bar_labels = QHBoxLayout()
        bar_labels.addWidget(self.bar_low)
        bar_labels.addWidget(self.bar_high)
        map_section, map_form = collapsible("Latent map (interpolated image)", [
            (form_label("method", "Interpolation"), self.method_combo),
            (form_label("spacing", "Map pixel spacing"), self.step_spin),
        ])
        map_form.addRow(self.map_button)
        layout = scroll_body(self)
        layout.addLayout(form)
        layout.addWidget(self.bar)
        layout.addLayout(bar_labels)
        layout.addWidget(self.colour_button)
        layout.addWidget(map_section)
        layout.addWidget(progress_bar(self.job))
        layout.addWidget(self.status)
        layout.addStretch(1)
        self._inputs = {"column": self.column_combo, "colormap": self.colormap_combo, "auto_limits": self.auto_limits,
                        "low": self.low, "high": self.high, "method": self.method_combo, "spacing": self.step_spin}

        self.points_picker.layer_changed.connect(self._on_layer)
        self.column_combo.currentTextChanged.connect(self._on_column)
        self.colormap_combo.currentTextChanged.connect(lambda *_: self.apply())
        self.auto_limits.toggled.connect(self._on_auto)
        self.low.editingFinished.connect(self.apply)
        self.high.editingFinished.connect(self.apply)
        self._on_auto(True)
        self._on_layer(self.points_picker.layer())
        self.points_picker.layer_changed.connect(self._watch)
        self._watched = None
        self._watch(self.points_picker.layer())
        self.flow.register(self.dock_name, self)

    def dock_state(self) -> dict:
        return widget_values(self._inputs)

    def restore_state(self, state: dict) -> None:
        set_widget_values(self._inputs, state)

    def _watch(self, layer) -> None:
        """New columns (latents after training, clusters) appear in 'colour by' without re-picking."""
        if self._watched is not None:
            try:
                self._watched.events.features.disconnect(self._on_features)
            except Exception:
                pass
        self._watched = layer
        if layer is not None:
            layer.events.features.connect(self._on_features)

    def _on_features(self, *_event) -> None:
        layer = self._watched
        if layer is None:
            return
        have = {self.column_combo.itemText(i) for i in range(self.column_combo.count())}
        if set(map(str, layer.features.columns)) != have:
            self._on_layer(layer)

    # ------------------------------------------------------------ helpers
    def layer(self):
        return self.points_picker.layer()

    def _on_layer(self, layer) -> None:
        self.column_combo.blockSignals(True)
        keep = self.column_combo.currentText()
        self.column_combo.clear()
        if layer is not None:
            columns = [str(c) for c in layer.features.columns]
            self.column_combo.addItems(columns)
            default = "angle" if "angle" in columns else next((c for c in columns if c[:1] == "z" and c[1:].isdigit()), columns[0] if columns else "")
            self.column_combo.setCurrentText(keep if keep in columns else default)
        self.column_combo.blockSignals(False)
        self._on_column()

    def _on_column(self, *_args) -> None:
        self.auto_limits.setChecked(True)
        self.apply()

    def _on_auto(self, on: bool) -> None:
        self.low.setEnabled(not on)
        self.high.setEnabled(not on)
        if on:
            self.apply()

    # ------------------------------------------------------------- action
    def apply(self) -> None:
        """Colour the sites by the chosen column (all frames share the limits)."""
        call_safely("Colouring sites", self._apply)

    def _apply(self) -> None:
        layer, column = self.layer(), self.column_combo.currentText()
        if layer is None or not column or column not in layer.features:
            return
        table = layer.features
        colormap = None if self.colormap_combo.currentText() == AUTO else self.colormap_combo.currentText()
        limits = None if self.auto_limits.isChecked() else (self.low.value(), self.high.value())
        if limits is not None and not limits[1] > limits[0]:
            raise ValueError(f"high limit ({limits[1]}) must be above low limit ({limits[0]})")
        symmetry = self.flow.angle_symmetry() if colours.is_angle_column(column) else 1
        scale = colours.colour_scale(table, column, colormap=colormap, limits=limits, symmetry=symmetry)
        if scale.kind == "categorical" and colormap is not None:  # a colormap was asked for: use it
            scale = colours.colour_scale(table, column, colormap=colormap, limits=scale.limits)
        self.scale = scale
        layer.face_color = colours.row_colours(table, scale)
        for box, value in ((self.low, scale.limits[0]), (self.high, scale.limits[1])):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        self._draw_bar(scale)
        what = f"{column} modulo {360 // scale.symmetry}° (3-fold honeycomb sites)" if scale.symmetry > 1 else column
        self.status.setText(f"{len(table)} sites coloured by {what} ({scale.kind}, shared by all frames)")

    def _draw_bar(self, scale: colours.ColourScale) -> None:
        rgba = colours.colour_bar_image(scale)
        h, w = rgba.shape[:2]
        image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        self.bar.setPixmap(QPixmap.fromImage(image))
        if scale.kind == "categorical":
            cats = scale.categories or []
            self.bar_low.setText(str(cats[0]) if cats else "")
            self.bar_high.setText(str(cats[-1]) if cats else "")
        elif scale.kind == "cyclic":
            low, high = colours.cyclic_labels(scale)
            self.bar_low.setText(low)
            self.bar_high.setText(high)
        else:
            self.bar_low.setText(f"{scale.limits[0]:.4g}")
            self.bar_high.setText(f"{scale.limits[1]:.4g}")

    # ----------------------------------------------------------- latent map
    def make_map(self):
        """Interpolate the column into a (T, Y, X) image layer in the background; returns the worker."""
        layer, column = self.layer(), self.column_combo.currentText()
        if layer is None or column not in layer.features:
            self.status.setText("choose a points layer and a column first")
            return None
        table = layer.features.copy()
        if "frame" not in table or layer.ndim >= 3:
            table["frame"] = np.round(np.asarray(layer.data)[:, 0]).astype(np.int64) if layer.ndim >= 3 else 0
        table["y"], table["x"] = np.asarray(layer.data)[:, -2], np.asarray(layer.data)[:, -1]
        shape = self._image_shape(layer)
        step = self.step_spin.value()
        frames = int(table["frame"].max()) + 1 if len(table) else 1
        if self.scale is None or self.scale.column != column:
            self._apply()
        name = f"{column} map"
        ny, nx = -(-shape[0] // step), -(-shape[1] // step)
        data = np.full((frames, ny, nx), np.nan, dtype=np.float32)
        kind = self.scale.kind if self.scale else "continuous"
        cmap = self.scale.colormap if self.scale and kind != "categorical" else "viridis"
        limits = self.scale.limits if self.scale else (0.0, 1.0)
        place = geometry(self.flow.layer("movie") or layer, 3)
        place["scale"] = (*place["scale"][:-2], *(np.asarray(place["scale"][-2:]) * step))
        made = self.layers.add("latent map", "image", data, name=name, colormap=cmap, contrast_limits=limits,
                               opacity=0.6, blending="translucent", metadata={PRODUCT_KEY: "latent map"}, **place)
        if made is None:
            self.status.setText("cancelled: nothing was replaced")
            return None
        self.map_layer = made
        circular = kind == "cyclic"
        return self.job.start(iter_latent_maps, table, column, shape, step=step, method=self.method_combo.currentText(),
                              circular=circular, total=frames)

    def _image_shape(self, layer) -> tuple[int, int]:
        """(Y, X) of the movie under the sites: the largest image layer, else the sites' extent."""
        movie = self.flow.layer("movie")
        if movie is not None:
            return int(movie.data.shape[-2]), int(movie.data.shape[-1])
        images = [lay for lay in self.viewer.layers if isinstance(lay, napari.layers.Image) and lay.ndim >= 2 and lay is not self.map_layer]
        if images:
            data = max(images, key=lambda lay: lay.data.shape[-1] * lay.data.shape[-2]).data
            return int(data.shape[-2]), int(data.shape[-1])
        yx = np.asarray(layer.data)[:, -2:]
        return int(np.ceil(yx[:, 0].max())) + 1, int(np.ceil(yx[:, 1].max())) + 1

    def _on_map_frame(self, item) -> None:
        frame, image = item
        if self.map_layer is not None and frame < self.map_layer.data.shape[0]:
            self.map_layer.data[frame] = image
            if frame == self.current_frame():
                self.map_layer.refresh()

    def _on_map_done(self) -> None:
        if self.map_layer is not None:
            self.map_layer.refresh()
            self.status.setText(f"latent map ready: layer '{self.map_layer.name}'")

    def current_frame(self) -> int:
        layer = self.layer()
        if layer is None or layer.ndim < 3:
            return 0
        return int(np.round(layer.world_to_data(self.viewer.dims.point)[0]))
