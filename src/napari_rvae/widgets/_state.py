"""One workflow state per viewer: what each step produced, read and written by every dock.

A dock never keeps its own idea of "the movie" or "the sites": it asks the
viewer's :class:`Workflow` (``workflow(viewer)``), and what it produces goes
back there, so the next step picks it up. The state holds

* layers by **role**: ``movie`` (Image), ``sites`` (Points), ``map`` (the atom
  probability image), ``labels`` (painted Labels);
* the current **model** (with its training history), the **lattice** found by
  Detect, the **run record** (one entry per step: what was run with which settings);
* the docks' own settings for a project save (``register`` / ``dock_states``).

Docks opened from napari's Plugins menu receive napari's public proxy of the
viewer, and layers reached through it are proxies too: everything here is
keyed by the real objects (:func:`unwrap`), so two docks always share one
state and a layer compares equal however it was reached.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable

import napari
from qtpy.QtCore import QObject, QTimer, Signal

ROLES = {"movie": "Image", "sites": "Points", "map": "Image", "labels": "Labels"}
PRODUCT_KEY = "napari_rvae"  # layer.metadata[PRODUCT_KEY] = what the plugin made the layer as
TRUTH_KEY = "ground_truth"  # layer.metadata[TRUTH_KEY] = True for reference layers of the samples
MAP_NAME = "atom probability"

_STATES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def unwrap(obj):
    """The real napari object behind napari's ``PublicOnlyProxy`` (plugin docks get proxies)."""
    for _ in range(8):
        inner = getattr(obj, "__wrapped__", None)
        if inner is None:
            return obj
        obj = inner
    return obj


def same_layer(a, b) -> bool:
    """Whether ``a`` and ``b`` are the same layer, proxies or not."""
    return a is not None and b is not None and unwrap(a) is unwrap(b)


def is_truth(layer) -> bool:
    """A reference (ground-truth) layer, e.g. of a sample: never a default input."""
    metadata = getattr(layer, "metadata", None) or {}
    return bool(metadata.get(TRUTH_KEY)) or "ground truth" in str(getattr(layer, "name", "")).lower()


def product(layer) -> str | None:
    """What the plugin made ``layer`` as (``"map"``, ``"sites"``, ``"decoded"`` …), or None."""
    metadata = getattr(layer, "metadata", None) or {}
    value = metadata.get(PRODUCT_KEY)
    return str(value) if value else None


def in_viewer(viewer, layer) -> bool:
    layer = unwrap(layer)
    return layer is not None and any(candidate is layer for candidate in unwrap(viewer).layers)


def unique_name(viewer, name: str) -> str:
    """``name``, or ``name [2]``, ``name [3]`` … when a layer of that name exists."""
    names = {layer.name for layer in unwrap(viewer).layers}
    if name not in names:
        return name
    k = 2
    while f"{name} [{k}]" in names:
        k += 1
    return f"{name} [{k}]"


def fits_role(role: str, layer) -> bool:
    """Whether ``layer`` can play ``role`` at all (its type and, for images, its kind)."""
    layer = unwrap(layer)
    kind = ROLES[role]
    if type(layer).__name__ != kind and not isinstance(layer, getattr(napari.layers, kind)):
        return False
    made = product(layer)
    if role == "movie":
        return made is None and not getattr(layer, "rgb", False) and layer.ndim in (2, 3)
    if role == "map":
        return made == "map"
    if role == "sites":
        return made in (None, "sites", "walls")
    if role == "labels":
        return made in (None, "painted labels")
    return True


class Workflow(QObject):
    """The workflow state of one viewer (see the module docstring). Get it with :func:`workflow`."""

    layer_changed = Signal(str, object)  # role, layer (or None)
    model_changed = Signal(object)
    lattice_changed = Signal(object)
    record_changed = Signal()
    docks_restored = Signal(dict)  # dock name -> its saved settings (a project was opened)

    def __init__(self, viewer) -> None:
        super().__init__()
        self.viewer = unwrap(viewer)
        self._layers: dict[str, Any] = dict.fromkeys(ROLES)
        self.model = None
        self.segmenter = None
        self.lattice = None  # detect.lattice.Lattice of the movie, when Detect estimated it
        self.record: dict = {}  # step -> settings and results summary
        self.project_folder = None
        self.dock_state: dict = {}  # settings to restore in docks opened later
        self._docks: dict[str, list] = {}  # name -> weak references to the docks of that kind, oldest first
        events = self.viewer.layers.events
        events.removed.connect(self._on_removed)
        events.inserted.connect(self._on_inserted)

    # ---------------------------------------------------------------- layers
    def layer(self, role: str):
        """The layer playing ``role`` (``movie``, ``sites``, ``map``, ``labels``), or None."""
        layer = self._layers.get(role)
        if layer is not None and not in_viewer(self.viewer, layer):
            self._layers[role] = None
            return None
        return layer

    def set_layer(self, role: str, layer) -> None:
        """Make ``layer`` (or None) play ``role``; every dock's picker of that role follows."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        layer = unwrap(layer)
        if layer is not None and not in_viewer(self.viewer, layer):
            raise ValueError(f"layer {layer.name!r} is not in this viewer")
        if self._layers.get(role) is layer:
            return
        self._layers[role] = layer
        self.layer_changed.emit(role, layer)

    def role_of(self, layer) -> str | None:
        layer = unwrap(layer)
        return next((role for role, held in self._layers.items() if held is layer and layer is not None), None)

    def _on_removed(self, event) -> None:
        layer = unwrap(event.value)
        for role, held in list(self._layers.items()):
            if held is layer:
                self._layers[role] = None
                self.layer_changed.emit(role, None)

    def _on_inserted(self, event) -> None:
        """A layer made by the plugin (or reopened from a project) takes its role at once."""
        layer = unwrap(event.value)
        role = (getattr(layer, "metadata", None) or {}).get("napari_rvae_role")
        if role in ROLES and fits_role(role, layer):
            self.set_layer(role, layer)
        folder = (getattr(layer, "metadata", None) or {}).get("napari_rvae_project")
        if folder and str(folder) != str(self.project_folder):
            self.project_folder = str(folder)
            # after the reader has added all of the project's layers
            QTimer.singleShot(0, lambda: self._adopt_project(str(folder)))

    # ----------------------------------------------------------------- model
    def set_model(self, model, *, history: list | None = None, origin: str = "") -> None:
        """Make ``model`` the current model; it keeps its training history so it can always be saved."""
        if model is not None:
            if history is not None:
                model.history = history
            elif not hasattr(model, "history"):
                model.history = []
            if origin:
                model.origin = origin
        self.model = model
        self.model_changed.emit(model)

    def set_lattice(self, lattice) -> None:
        self.lattice = lattice
        self.lattice_changed.emit(lattice)

    def angle_symmetry(self) -> int:
        """The movie's atom sites' rotational symmetry (:attr:`Lattice.site_symmetry`; 1 without a lattice)."""
        return getattr(self.lattice, "site_symmetry", 1)

    def note(self, step: str, entry: dict) -> None:
        """Record what a step did (settings, counts) in the run record."""
        self.record[step] = dict(entry)
        self.record_changed.emit()

    # ----------------------------------------------------------------- docks
    def register(self, name: str, dock) -> None:
        """A dock whose settings a project save keeps (``dock.dock_state()`` / ``dock.restore_state(d)``).

        With two docks of one kind open (one from the menu, one in the Workflow panel) the
        oldest one's settings are saved; reopening sets both."""
        self._docks.setdefault(name, []).append(weakref.ref(dock))
        if name in self.dock_state:
            state = self.dock_state[name]
            ref = weakref.ref(dock)
            QTimer.singleShot(0, lambda: _restore(ref(), state))

    def _alive(self, name: str) -> list:
        out = []
        for ref in self._docks.get(name, []):
            dock = ref()
            try:
                if dock is not None and dock.isWidgetType():
                    out.append(dock)
            except RuntimeError:  # its Qt object is gone
                continue
        return out

    def dock_states(self) -> dict:
        out = dict(self.dock_state)
        for name in list(self._docks):
            for dock in self._alive(name):
                try:
                    out[name] = dock.dock_state()
                    break
                except RuntimeError:
                    continue
        return out

    def restore_docks(self, states: dict) -> None:
        self.dock_state = dict(states or {})
        for name in list(self._docks):
            if name in self.dock_state:
                for dock in self._alive(name):
                    _restore(dock, self.dock_state[name])
        self.docks_restored.emit(self.dock_state)

    def _adopt_project(self, folder: str) -> None:
        from ._project import adopt_project

        adopt_project(self, folder)


def _restore(dock, state: dict) -> None:
    from ._workers import call_safely

    if dock is None:
        return
    try:
        call_safely("Restoring the dock's settings", dock.restore_state, state)
    except RuntimeError:  # the dock was closed meanwhile
        pass


def workflow(viewer) -> Workflow:
    """The :class:`Workflow` of ``viewer`` (created on first use); proxies share the real viewer's."""
    viewer = unwrap(viewer)
    state = _STATES.get(viewer)
    if state is None:
        state = _STATES[viewer] = Workflow(viewer)
    return state


# ------------------------------------------------------------------ torch, loaded off the GUI thread
_TORCH = {"ready": False, "thread": None, "error": None}
_TORCH_LOCK = threading.Lock()


def load_torch_in_background(on_ready: Callable[[], None] | None = None) -> None:
    """Import torch (warming up its optimiser machinery) and the plugin's scientific modules in a
    background thread, once per process.

    The first ``import torch`` and ``torch.optim.Adam`` take 3–7 s on 2 cores, scipy.stats and
    scikit-learn a few more; done in the GUI thread they freeze napari. ``on_ready`` is called
    (in the GUI thread) when done.
    """
    with _TORCH_LOCK:
        if _TORCH["ready"]:
            if on_ready is not None:
                QTimer.singleShot(0, on_ready)
            return
        if _TORCH["thread"] is None:
            thread = threading.Thread(target=_warm_torch, name="napari-rvae torch warm-up", daemon=True)
            _TORCH["thread"] = thread
            thread.start()
    if on_ready is not None:
        _call_when_ready(on_ready)


def _call_when_ready(callback: Callable[[], None]) -> None:
    timer = QTimer()
    timer.setInterval(100)

    def check():
        if _TORCH["ready"] or _TORCH["error"] is not None:
            timer.stop()
            timer.deleteLater()
            callback()

    timer.timeout.connect(check)
    timer.start()
    _PENDING.append(timer)
    _PENDING[:] = [t for t in _PENDING if t.isActive()]


_PENDING: list = []


def _warm_torch() -> None:
    import gc

    # importing creates ~600 000 long-lived objects (modules, classes, functions of torch, scipy,
    # scikit-learn); full garbage collections meanwhile walk them all, 50–500 ms at a time with
    # Python's lock held, in whatever thread triggers them — the GUI's longest stalls. So: no
    # collection while importing, then the survivors are frozen out of the collector's sight
    # (they live as long as the process anyway).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        import torch

        layer = torch.nn.Linear(2, 1)
        optimiser = torch.optim.Adam(layer.parameters())
        layer(torch.zeros(1, 2)).sum().backward()
        optimiser.step()
        from .. import segment, vae  # noqa: F401  (their imports pull in the rest)
        from .. import analysis, detect, patches  # noqa: F401  (scipy.signal / stats, sklearn: seconds)
    except Exception as err:  # torch missing or broken: the torch docks say so when used
        _TORCH["error"] = err
        return
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
    _TORCH["ready"] = True


def torch_ready() -> bool:
    return bool(_TORCH["ready"])


def wait_for_torch(timeout: float | None = None) -> None:
    """Block (in a worker thread) until the background warm-up is done; start it if needed."""
    thread = _TORCH["thread"]
    if thread is None and not _TORCH["ready"]:
        _warm_torch()
        return
    if thread is not None:
        thread.join(timeout)
