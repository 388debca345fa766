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
from ._state import fits_role, is_truth, same_layer, unwrap, workflow
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
    """A combo box listing the viewer's layers of some types, kept up to date, bound to a workflow role.

    It refreshes when layers are added, removed, reordered or renamed and keeps the
    current choice while it exists. With a ``role`` (``movie``, ``sites``, ``map``,
    ``labels``) it shows the viewer's :class:`~._state.Workflow` layer of that role and
    a choice made here becomes the workflow's, so every dock follows it. Without one
    (or when the role is empty) the default is the newest *visible* layer that is not a
    ground-truth reference; hidden and reference layers are listed but never chosen by
    themselves.

    Parameters
    ----------
    viewer : napari.Viewer (or napari's proxy of it)
    layer_types : tuple of napari layer classes
    tooltip : str
        What the picked layer is used for.
    allow_none : bool
        Offer "(none)" as the first entry.
    prefer : callable, optional
        ``prefer(layer) -> bool``: among default candidates, such layers come first,
        and a newly added such layer is chosen.
    role : str, optional
        The workflow role this picker shows and sets.
    accept : callable, optional
        ``accept(layer) -> bool``: which layers of the types to list (default: those that
        fit the role, see :func:`~._state.fits_role`).
    """

    layer_changed = Signal(object)

    def __init__(self, viewer: napari.Viewer, layer_types: tuple, tooltip: str, allow_none: bool = False,
                 prefer=None, role: str | None = None, accept=None) -> None:
        super().__init__()
        self.viewer = unwrap(viewer)
        self.prefer = prefer
        self.role = role
        self.accept = accept if accept is not None else ((lambda layer: fits_role(role, layer)) if role else None)
        self.layer_types = tuple(layer_types)
        self.allow_none = allow_none
        self.flow = workflow(self.viewer)
        self.setToolTip(tooltip)
        self.setMinimumWidth(140)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        self._layers: list = []
        events = self.viewer.layers.events
        events.inserted.connect(self._on_inserted)
        events.removed.connect(self.refresh)
        events.moved.connect(self.refresh)
        for layer in self.viewer.layers:
            layer.events.name.connect(self.refresh)
        self.currentIndexChanged.connect(self._emit)
        self.activated.connect(self._on_user_choice)
        if role is not None:
            self.flow.layer_changed.connect(self._on_role)
        self.refresh()

    def layer(self):
        """The chosen layer (the real layer, not a proxy), or ``None``."""
        try:
            i = self.currentIndex()
        except RuntimeError:  # the Qt object is gone
            return None
        if i < 0 or i >= len(self._layers):
            return None
        return self._layers[i]

    def set_layer(self, layer) -> None:
        """Choose ``layer`` (a layer of this viewer, or napari's proxy of one)."""
        for i, candidate in enumerate(self._layers):
            if candidate is not None and same_layer(candidate, layer):
                self.setCurrentIndex(i)
                if self.role is not None:
                    self.flow.set_layer(self.role, candidate)
                return
        raise ValueError(f"layer {getattr(layer, 'name', layer)!r} is not a {self._kinds()} layer of this viewer")

    def candidates(self) -> list:
        """The layers listed (all of the types that ``accept`` takes), oldest first."""
        out = []
        for layer in self.viewer.layers:
            if not isinstance(layer, self.layer_types):
                continue
            try:
                if self.accept is not None and not self.accept(layer):
                    continue
            except Exception:
                continue
            out.append(layer)
        return out

    def default_layer(self, layers: list):
        """The newest visible non-reference layer (preferred ones first), or None."""
        eligible = [layer for layer in layers if layer is not None and layer.visible and not is_truth(layer)]
        if self.prefer is not None:
            liked = [layer for layer in eligible if _safe(self.prefer, layer)]
            eligible = liked or eligible
        return eligible[-1] if eligible else None

    def refresh(self, *_event) -> None:
        try:
            current = self.layer()
        except RuntimeError:  # the Qt object was deleted; nothing to refresh
            return
        layers = ([None] if self.allow_none else []) + self.candidates()
        wanted = None
        if current is not None and any(layer is current for layer in layers):
            wanted = current
        held = self.flow.layer(self.role) if self.role else None
        if held is not None and any(layer is held for layer in layers):
            wanted = held
        if wanted is None:
            wanted = self.default_layer(layers)
        try:
            self.blockSignals(True)
            self.clear()
            self._layers = layers
            for layer in layers:
                self.addItem("(none)" if layer is None else layer.name)
            index = next((i for i, layer in enumerate(layers) if layer is wanted), 0 if self.allow_none else -1)
            self.setCurrentIndex(index)
        finally:
            self.blockSignals(False)
        chosen = self.layer()
        if self.role is not None and chosen is not None and held is None:
            self.flow.set_layer(self.role, chosen)  # the default becomes the workflow's choice
        if chosen is not current:
            self.layer_changed.emit(chosen)

    def _on_role(self, role: str, layer) -> None:
        if role == self.role:
            self.refresh()

    def _on_user_choice(self, index: int) -> None:
        if self.role is not None and 0 <= index < len(self._layers) and self._layers[index] is not None:
            self.flow.set_layer(self.role, self._layers[index])

    def _on_inserted(self, event) -> None:
        layer = unwrap(event.value)
        layer.events.name.connect(self.refresh)
        self.refresh()
        if (self.prefer is not None and isinstance(layer, self.layer_types) and self.layer() is not layer
                and not is_truth(layer) and _safe(self.prefer, layer) and any(c is layer for c in self._layers)):
            self.set_layer(layer)

    def _emit(self, *_args) -> None:
        self.layer_changed.emit(self.layer())

    def _kinds(self) -> str:
        return "/".join(t.__name__ for t in self.layer_types)


def _safe(predicate, layer) -> bool:
    try:
        return bool(predicate(layer))
    except Exception:
        return False


# ---------------------------------------------------------------- dock settings for project files
def widget_values(widgets: dict) -> dict:
    """The values of named input widgets (spin boxes, combos, check boxes, line edits)."""
    from qtpy.QtWidgets import QAbstractSpinBox, QCheckBox, QLineEdit

    out = {}
    for name, widget in widgets.items():
        if isinstance(widget, QCheckBox):
            out[name] = bool(widget.isChecked())
        elif isinstance(widget, QComboBox):
            out[name] = widget.currentText()
        elif isinstance(widget, QAbstractSpinBox):
            out[name] = widget.value()
        elif isinstance(widget, QLineEdit):
            out[name] = widget.text()
    return out


def set_widget_values(widgets: dict, values: dict) -> None:
    """Set named input widgets from :func:`widget_values`' output (unknown names are skipped)."""
    from qtpy.QtWidgets import QAbstractSpinBox, QCheckBox, QLineEdit

    for name, value in (values or {}).items():
        widget = widgets.get(name)
        if widget is None:
            continue
        if isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QComboBox):
            if widget.findText(str(value)) >= 0:
                widget.setCurrentText(str(value))
        elif isinstance(widget, QAbstractSpinBox) and isinstance(value, (int, float)):
            widget.setValue(type(widget.value())(value))
        elif isinstance(widget, QLineEdit):
            widget.setText(str(value))


def say_latent_check(check, done: str) -> str:
    """A dock's status after training: the latent check's warning first (also as a napari warning
    notification, so it is seen), then what was done."""
    if check is None or not check.warnings:
        return done
    from napari.utils.notifications import show_warning

    show_warning(check.warnings[0])
    return f"⚠ {check.warnings[0]}\n{done}"
