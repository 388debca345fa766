"""Small building blocks shared by the docks: layer pickers, tooltips, collapsible sections."""

from __future__ import annotations

from typing import Iterable

import napari
import numpy as np
import pandas as pd
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ..io.sites import validate_sites
from ._workers import call_safely


def tip(widget: QWidget, text: str) -> QWidget:
    """Give ``widget`` a tooltip and return it (so it can be used inline)."""
    widget.setToolTip(text)
    return widget


def button(text: str, tooltip: str, slot=None) -> QPushButton:
    """A push button with a tooltip, connected to ``slot`` (its errors become notifications)."""
    b = QPushButton(text)
    b.setToolTip(tooltip)
    if slot is not None:
        b.clicked.connect(lambda *_: call_safely(text.rstrip("…."), slot))
    return b


def sites_from_layer(layer) -> pd.DataFrame:
    """The sites table of a Points layer: its features with ``frame, y, x`` from the point data (pixels).

    A 2D layer gets ``frame = 0``; positions are data coordinates (pixels of the movie).
    """
    data = np.asarray(layer.data, dtype=np.float64)
    table = layer.features.reset_index(drop=True).copy()
    table["frame"] = np.round(data[:, -3]).astype(np.int64) if data.shape[1] >= 3 else 0
    table["y"], table["x"] = data[:, -2], data[:, -1]
    return validate_sites(table, name=f"points layer {layer.name!r}")


def write_columns(layer, table: pd.DataFrame, columns) -> None:
    """Put ``table[columns]`` (same rows as the layer) into the layer's features, keeping the others."""
    if len(table) != len(layer.data):
        raise ValueError(f"table has {len(table)} rows but layer {layer.name!r} has {len(layer.data)} points")
    features = layer.features.reset_index(drop=True).copy()
    for column in columns:
        features[column] = table[column].to_numpy()
    layer.features = features


def spin(value: int, lo: int, hi: int, tooltip: str, step: int = 1, suffix: str = "") -> QSpinBox:
    """An integer spin box with a tooltip."""
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setSingleStep(step)
    s.setValue(value)
    if suffix:
        s.setSuffix(suffix)
    s.setToolTip(tooltip)
    return s


def dspin(value: float, lo: float, hi: float, tooltip: str, step: float = 0.1, decimals: int = 3) -> QDoubleSpinBox:
    """A float spin box with a tooltip."""
    s = QDoubleSpinBox()
    s.setDecimals(decimals)
    s.setRange(lo, hi)
    s.setSingleStep(step)
    s.setValue(value)
    s.setToolTip(tooltip)
    return s


def collapsible(title: str, rows: Iterable[tuple[str, QWidget]] = ()) -> tuple[QCollapsible, QFormLayout]:
    """A collapsed "Advanced" section holding a form; returns (section, its form layout)."""
    section = QCollapsible(title)
    body = QWidget()
    form = QFormLayout(body)
    form.setContentsMargins(4, 2, 4, 2)
    for label, widget in rows:
        form.addRow(label, widget)
    section.addWidget(body)
    section.collapse(animate=False)
    # expanded, the form keeps its natural height (the dock scrolls, see scroll_body) instead of
    # being squashed into overlapping rows when the dock is short
    section.toggled.connect(lambda expanded: body.setMinimumHeight(body.sizeHint().height() if expanded else 0))
    return section, form


def scroll_body(dock: QWidget) -> QVBoxLayout:
    """Give ``dock`` a vertical scroll area and return the layout to fill: a dock taller than
    the space napari gives it (e.g. with "Advanced" open) scrolls instead of squashing its rows."""
    inner = QWidget()
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(inner)
    outer = QVBoxLayout(dock)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
    return QVBoxLayout(inner)


def form_label(text: str, tooltip: str) -> QLabel:
    label = QLabel(text)
    label.setToolTip(tooltip)
    return label


def has_latents(layer) -> bool:
    """True for a layer whose features hold model latents (z0 …)."""
    features = getattr(layer, "features", None)
    return features is not None and any(str(c)[:1] == "z" and str(c)[1:].isdigit() for c in features.columns)


class LayerPicker(QComboBox):
    """A combo box listing the viewer's layers of some types, kept up to date.

    It refreshes when layers are added, removed, reordered or renamed and
    keeps the current choice when it still exists.

    Parameters
    ----------
    viewer : napari.Viewer
    layer_types : tuple of napari layer classes
        Which layers to list (e.g. ``(napari.layers.Points,)``).
    tooltip : str
        What the picked layer is used for.
    allow_none : bool
        Offer "(none)" as the first entry.
    """

    layer_changed = Signal(object)

    def __init__(self, viewer: napari.Viewer, layer_types: tuple, tooltip: str, allow_none: bool = False,
                 prefer=None) -> None:
        super().__init__()
        self.viewer = viewer
        self.prefer = prefer  # prefer(layer) -> bool: switch to such a layer when it is added
        self.layer_types = tuple(layer_types)
        self.allow_none = allow_none
        self.setToolTip(tooltip)
        self.setMinimumWidth(140)
        self._layers: list = []
        events = viewer.layers.events
        events.inserted.connect(self._on_inserted)
        events.removed.connect(self.refresh)
        events.moved.connect(self.refresh)
        for layer in viewer.layers:
            layer.events.name.connect(self.refresh)
        self.currentIndexChanged.connect(self._emit)
        self.refresh()

    def layer(self):
        """The chosen layer, or ``None``."""
        i = self.currentIndex()
        if i < 0 or i >= len(self._layers):
            return None
        return self._layers[i]

    def set_layer(self, layer) -> None:
        """Choose ``layer`` (it must be listed)."""
        for i, candidate in enumerate(self._layers):
            if candidate is layer:
                self.setCurrentIndex(i)
                return
        raise ValueError(f"layer {getattr(layer, 'name', layer)!r} is not a {self._kinds()} layer of this viewer")

    def refresh(self, *_event) -> None:
        try:
            current = self.layer()
        except RuntimeError:  # the Qt object was deleted; nothing to refresh
            return
        layers = [None] if self.allow_none else []
        layers += [layer for layer in self.viewer.layers if isinstance(layer, self.layer_types)]
        self.blockSignals(True)
        self.clear()
        self._layers = layers
        for layer in layers:
            self.addItem("(none)" if layer is None else layer.name)
        index = next((i for i, layer in enumerate(layers) if layer is current and layer is not None), None)
        if index is None:  # default: the newest matching layer
            index = len(layers) - 1 if layers else -1
        self.setCurrentIndex(index)
        self.blockSignals(False)
        if self.layer() is not current:
            self.layer_changed.emit(self.layer())

    def _on_inserted(self, event) -> None:
        layer = event.value
        layer.events.name.connect(self.refresh)
        self.refresh()
        if self.prefer is not None and isinstance(layer, self.layer_types) and self.layer() is not layer:
            try:
                wanted = bool(self.prefer(layer))
            except Exception:
                wanted = False
            if wanted:
                self.set_layer(layer)

    def _emit(self, *_args) -> None:
        self.layer_changed.emit(self.layer())

    def _kinds(self) -> str:
        return "/".join(t.__name__ for t in self.layer_types)
