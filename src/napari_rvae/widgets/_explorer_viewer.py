"""The latent explorer's side in the viewer: the decoded window layer, the selection and its rings.

A mixin of :class:`~.latent_explorer.LatentExplorer` (it uses the dock's ``viewer``, ``layer``,
``table``, ``selection``, pickers and plot).
"""

from __future__ import annotations

import numpy as np

from ._layers import geometry
from ._state import PRODUCT_KEY, in_viewer
from ._workers import call_safely

DECODED_LAYER = "decoded window"
SELECTION_LAYER = "selected sites"


class ViewerSide:
    """Layers the explorer keeps in the viewer, and the selection written to the sites' features."""

    def _flush_decoded_layer(self) -> None:
        window, self._pending_layer_window = self._pending_layer_window, None
        if window is not None:
            call_safely("Showing the decoded window", self._show_decoded_layer, window)

    def _view_corner(self, shape: tuple[int, int], scale: np.ndarray) -> np.ndarray:
        """World (y, x) where a window of ``shape`` pixels sits just inside the view's top-left corner."""
        camera = self.viewer.scene.camera if hasattr(self.viewer, "scene") else self.viewer.camera
        centre = np.asarray(camera.center, dtype=np.float64)[-2:]
        zoom = float(camera.zoom) or 1.0
        canvas = getattr(self.viewer, "canvas", None)
        size = getattr(canvas, "size", None)  # (height, width) in screen pixels
        height, width = (float(size[0]), float(size[1])) if size is not None and min(size) > 1 else (600.0, 800.0)
        top_left = centre - np.array([height, width]) / (2 * zoom)
        margin = 12.0 / zoom  # a few screen pixels in from the corner
        return top_left + margin + 0.5 * scale  # napari places pixel centres at translate + index * scale

    def _show_decoded_layer(self, window: np.ndarray) -> None:
        """The decoded window as an image layer in the top-left corner of the current view (at the
        movie's pixel size), updated in place on later clicks."""
        window = np.asarray(window, dtype=np.float32)
        finite = window[np.isfinite(window)]
        limits = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if limits[1] <= limits[0]:
            limits = (limits[0], limits[0] + 1e-6)
        source = self.image_picker.layer() or self.layer
        place = geometry(source, 2) if source is not None else {}
        scale = np.asarray(place.get("scale", (1.0, 1.0)), dtype=np.float64)
        corner = self._view_corner(window.shape, scale)
        layer = self.decoded_layer if in_viewer(self.viewer, self.decoded_layer) else None
        if layer is not None and layer.data.shape == window.shape:
            layer.data = window
            layer.contrast_limits = limits
            if np.abs(np.asarray(layer.translate[-2:]) - corner).max() > 0.25 * scale.max():
                layer.translate = tuple(corner)
            return
        if layer is not None:
            self.viewer.layers.remove(layer)
        name = DECODED_LAYER if DECODED_LAYER not in self.viewer.layers else f"{DECODED_LAYER} (explorer)"
        active = self.viewer.layers.selection.active
        place["translate"] = tuple(corner)
        self.decoded_layer = self.viewer.add_image(window, name=name, colormap="gray", contrast_limits=limits,
                                                   metadata={PRODUCT_KEY: "decoded"}, **place)
        if active is not None:
            self.viewer.layers.selection.active = active

    def _update_selection_layer(self) -> None:
        """Ring the selected sites of the frame on screen in a layer on top (it follows the frame:
        a few hundred points to update, not the whole movie's selection)."""
        layer = self.selection_layer if in_viewer(self.viewer, self.selection_layer) else None
        chosen = np.zeros(0, dtype=np.intp)
        if self.layer is not None and self.highlight_check.isChecked() and self.selection.any():
            in_frame = self.frame_sites(self.current_frame())
            chosen = in_frame[self.selection[in_frame]]
        if self.layer is None or (not chosen.size and layer is None):
            return
        data = np.asarray(self.layer.data)
        coords = data[chosen] if chosen.size else np.zeros((0, data.shape[1]))
        size = float(np.median(self.layer.size)) if len(data) else 3.0
        if layer is not None and layer.ndim == coords.shape[1]:
            layer.data = coords
            layer.size = 2.6 * size
            return
        if layer is not None:
            self.viewer.layers.remove(layer)
        active = self.viewer.layers.selection.active
        self.selection_layer = self.viewer.add_points(
            coords, name=SELECTION_LAYER if SELECTION_LAYER not in self.viewer.layers else f"{SELECTION_LAYER} (explorer)",
            symbol="ring", size=2.6 * size, face_color="#ffe600", border_width=0, opacity=1.0,
            metadata={PRODUCT_KEY: "selection"}, **geometry(self.layer))
        if active is not None:
            self.viewer.layers.selection.active = active

    # ---------------------------------------------------------- selection
    def select_sites(self, indices) -> None:
        """Select sites ``indices`` (all frames): the ``selected`` column, the plot overlay and,
        in the viewer, the selected sites of the frame on screen (napari's selection of tens of
        thousands of points takes seconds, one frame's takes milliseconds)."""
        if self.layer is None:
            return
        indices = np.unique(np.asarray(indices, dtype=np.intp))
        self.selection = np.zeros(len(self.table), dtype=bool)
        self.selection[indices] = True
        self.table["selected"] = self.selection
        self._write_features(["selected"])
        self.plot.show_selection(indices)
        self._highlight_in_viewer(self.frame_sites(self.current_frame()))
        self._update_selection_layer()
        self.status.setText(f"{indices.size} site(s) selected")

    def _highlight_in_viewer(self, in_frame: np.ndarray) -> None:
        self._selecting = True
        try:
            self.layer.selected_data = set(in_frame[self.selection[in_frame]].tolist())
        finally:
            self._selecting = False

    def clear_selection(self) -> None:
        self.select_sites(np.zeros(0, dtype=np.intp))

    def assign_cluster(self) -> None:
        """Write the cluster number into ``cluster`` for the selected sites, then count on."""
        if self.layer is None or not self.selection.any():
            self.status.setText("select sites first (lasso or rectangle)")
            return
        if "cluster" not in self.table:
            self.table["cluster"] = np.full(len(self.table), -1, dtype=np.int64)
        value = self.cluster_spin.value()
        count = int(self.selection.sum())
        self.table.loc[self.selection, "cluster"] = value
        self._write_features(["cluster"])
        self._fill_combos()
        if self.colour_combo.currentText() == "cluster":
            self.recolour()
        self.cluster_spin.setValue(value + 1)
        self.status.setText(f"cluster {value}: {count} site(s)")

    def _write_features(self, columns: list[str]) -> None:
        """Write our columns into the layer's features (in place when they exist: no table copy)."""
        self._writing = True
        try:
            features = self.layer.features
            if len(features) == len(self.table) and all(c in features for c in columns):
                for column in columns:
                    features[column] = self.table[column].to_numpy()
                self.layer.events.features()
            else:
                self.layer.features = self.table
        finally:
            self._writing = False

    def _on_features(self, *_event) -> None:
        if not self._writing:  # new latents from training, or another dock
            self._load_table()

    def _on_viewer_selection(self, *_event) -> None:
        if self.layer is None or self._selecting:
            return
        # the user selected points in the viewer: show those in the plot instead
        self.selection = np.zeros(len(self.table), dtype=bool)
        self.plot.show_selection(np.fromiter(self.layer.selected_data, dtype=np.intp))
