"""The layers docks add: the movie's calibration for each, and never a layer replaced unasked."""

from __future__ import annotations

from ._common import has_latents
from ._state import in_viewer, unique_name, unwrap


def geometry(source, ndim: int | None = None) -> dict:
    """``scale, translate, units, axis_labels`` of ``source`` (the movie layer) for a new layer
    with its last ``ndim`` axes (default all): every layer the plugin adds shares the movie's
    calibration, so napari never sees inconsistent units."""
    if source is None:
        return {}
    source = unwrap(source)
    n = source.ndim if ndim is None else int(ndim)
    scale, translate = list(source.scale), list(source.translate)
    units = [str(u) for u in getattr(source, "units", ())] or ["pixel"] * source.ndim
    labels = list(getattr(source, "axis_labels", ())) or [f"axis {i}" for i in range(source.ndim)]
    if n <= source.ndim:
        pick = slice(source.ndim - n, None)
        return {"scale": tuple(scale[pick]), "translate": tuple(translate[pick]), "units": tuple(units[pick]),
                "axis_labels": tuple(labels[pick])}
    extra = n - source.ndim  # e.g. (frame, y, x) points over a single image
    return {"scale": (1.0,) * extra + tuple(scale), "translate": (0.0,) * extra + tuple(translate),
            "units": ("pixel",) * extra + tuple(units), "axis_labels": ("t",) * extra + tuple(labels)}


def ask(parent, title: str, text: str) -> str:
    """Ask before replacing a layer: ``"replace"``, ``"keep"`` (keep both) or ``"cancel"``."""
    from qtpy.QtWidgets import QMessageBox

    box = QMessageBox(parent)
    box.setWindowTitle(title)
    box.setText(text)
    replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
    keep = box.addButton("Keep both", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep)
    box.exec()
    clicked = box.clickedButton()
    return "replace" if clicked is replace else "keep" if clicked is keep else "cancel"


def _fingerprint(layer) -> tuple:
    features = getattr(layer, "features", None)
    columns = tuple(map(str, features.columns)) if features is not None else ()
    return (layer.name, columns, int(len(layer.data)) if hasattr(layer.data, "__len__") else 0)


class LayerMaker:
    """Adds a dock's output layers without ever deleting or overwriting someone's work unasked.

    A layer this dock made and that is unchanged since (same name, same feature columns,
    same number of points) is replaced silently on a re-run. Anything else under the
    wanted name — a layer made elsewhere, or ours but renamed, edited, given latents or
    clusters — is replaced only if the user says so; "Keep both" adds the new layer
    under a free name (``sites [2]``).
    """

    def __init__(self, dock) -> None:
        self.dock = dock
        self._made: dict[str, tuple] = {}  # key -> (layer, fingerprint)

    def previous(self, key: str):
        layer, _ = self._made.get(key, (None, None))
        return layer if layer is not None and in_viewer(self.dock.viewer, layer) else None

    def add(self, key: str, kind: str, data, *, name: str | None = None, **kwargs):
        """Add a ``kind`` layer (``points``, ``image``, ``labels``, ``tracks``) for output ``key``;
        returns it, or None when the user cancelled."""
        viewer = self.dock.viewer
        name = name or key
        old = self.previous(key)
        index = None
        target = old if old is not None else (viewer.layers[name] if name in viewer.layers else None)
        if target is not None:
            ours = old is not None and _fingerprint(old) == self._made[key][1]
            answer = "replace" if ours else ask(
                self.dock, "Replace a layer?",
                f"Layer '{target.name}' exists" + (" and was changed since" if old is not None else "")
                + f" ({_describe(target)}). Replace it with the new {key}, or keep both?")
            if answer == "cancel":
                return None
            if answer == "replace":
                index = list(viewer.layers).index(target)
                viewer.layers.remove(target)
            else:
                name = unique_name(viewer, name)
        layer = getattr(viewer, f"add_{kind}")(data, name=name, **kwargs)
        if index is not None:
            here = list(viewer.layers).index(layer)
            if here != index:
                viewer.layers.move(here, index)
        self._made[key] = (layer, _fingerprint(layer))
        return layer


def _describe(layer) -> str:
    features = getattr(layer, "features", None)
    kept = []
    if features is not None:
        if has_latents(layer):
            kept.append("latents")
        if "cluster" in features:
            kept.append("clusters")
    n = len(layer.data) if hasattr(layer.data, "__len__") else 0
    return f"{type(layer).__name__.lower()} layer, {n} items" + (f", with {' and '.join(kept)}" if kept else "")
