"""The Workflow panel: every step of the plugin as tabs of one dock, in workflow order.

Plugins ▸ napari rVAE ▸ Workflow opens one dock that fits a 1366 × 768 screen: a row of
project buttons (Open project…, Save project…, Save model…) above tabs for the steps —
Run all (the one-button pipeline), Segment, Detect, Train, Explore, Colour, Analyse. All
tabs share the viewer's workflow state, so each step starts from what the previous one
produced. The same docks opened one by one from the Plugins menu join one tab stack too.
"""

from __future__ import annotations

import napari
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QTabWidget, QVBoxLayout, QWidget

from ._common import button
from ._layers import ask
from ._dock import RvaeDock, StatusLabel
from ._project import check_target, gather_project, open_project, save_current_model, write_project
from ._workers import BackgroundJob, call_safely

STEPS = (("Run all", "pipeline_dock", "RunPipeline", "Detect, train and encode in one go"),
         ("Segment", "segment_dock", "SegmentLabel", "Optional: a U-Net from a few painted strokes"),
         ("Detect", "detect_dock", "Detect", "Atoms (or PFM walls) of every frame"),
         ("Train", "train_vae", "TrainVAE", "A VAE / rVAE on windows at the sites"),
         ("Explore", "latent_explorer", "LatentExplorer", "The latent plane ⇄ the image"),
         ("Colour", "colour_atoms", "ColourAtoms", "Sites coloured by angle or a latent"),
         ("Analyse", "analysis_dock", "AnalysisDock", "Clusters, dynamics, angles, chemistry, PFM metrics"))


class WorkflowPanel(RvaeDock):
    """The dock (see the module docstring)."""

    dock_name = "workflow"
    MIN_WIDTH = 400

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(napari_viewer)
        self.save_job = BackgroundJob("Saving the project", on_return=self._on_saved, parent=self)
        self.open_button = button("Open project…", "Reopen a project folder: the movie, sites with latents and "
                                  "clusters, map, painted labels, the model and these tabs' settings", self.open_dialog)
        self.save_button = button("Save project…", "Save everything into a project folder (the folder "
                                  "'napari-rvae analyze' writes)", self.save_dialog)
        self.model_button = button("Save model…", "Save the current model with its training history", self.save_model_dialog)
        self.status = StatusLabel()
        self.tabs = QTabWidget()
        self.tabs.setUsesScrollButtons(True)
        self.docks = {}
        self._slots = []  # (placeholder, module, class name) per tab: a step's dock is built when first shown
        for title, module, name, help_text in STEPS:
            holder = QWidget()
            box = QVBoxLayout(holder)
            box.setContentsMargins(0, 0, 0, 0)
            self._slots.append((holder, module, name))
            index = self.tabs.addTab(holder, title)
            self.tabs.setTabToolTip(index, help_text)
        self.tabs.currentChanged.connect(self._build)
        row = QHBoxLayout()
        for b in (self.open_button, self.save_button, self.model_button):
            row.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)
        self.tabs.setCurrentIndex(2)  # Detect: the first step on a new movie
        self._build(self.tabs.currentIndex())
        self.flow.model_changed.connect(self._set_buttons)
        self.save_job.finished.connect(self._set_buttons)
        self._set_buttons()

    def dock(self, name: str):
        """The embedded dock of a step (``detect``, ``train``, ``explore`` …), built if not yet shown."""
        if name not in self.docks:
            for index, (_, module, cls_name) in enumerate(self._slots):
                if self._class(module, cls_name).dock_name == name:
                    self._build(index)
        return self.docks[name]

    def show_step(self, name: str):
        """Bring the tab of a step (``detect``, ``train``, ``explore`` …) to the front; returns its dock."""
        dock = self.dock(name)
        for holder, _, _ in self._slots:
            if holder.layout().count() and holder.layout().itemAt(0).widget() is dock:
                self.tabs.setCurrentWidget(holder)
        return dock

    @staticmethod
    def _class(module: str, name: str):
        import importlib

        return getattr(importlib.import_module(f"{__package__}.{module}"), name)

    def _build(self, index: int) -> None:
        """Build the dock of tab ``index`` the first time it is shown (opening the panel stays quick;
        the scientific modules load in the background meanwhile)."""
        if not 0 <= index < len(self._slots):
            return
        holder, module, name = self._slots[index]
        if holder.layout().count():
            return
        cls = self._class(module, name)
        dock = cls(self.viewer)
        self.docks[cls.dock_name] = dock
        holder.layout().addWidget(dock)

    def _set_buttons(self, *_args) -> None:
        self.model_button.setEnabled(self.flow.model is not None)
        self.save_button.setEnabled(not self.save_job.running)

    # ------------------------------------------------------------ project
    def save_project_to(self, folder, replace: bool | None = None):
        """Save the project into ``folder`` in the background; returns the worker (None if not replaced).

        An existing project there is replaced only when ``replace`` is True or the user says so.
        """
        kind = check_target(folder)
        if kind == "project" and not replace:
            if replace is False or ask(self, "Replace the project?", f"{folder} holds a project. Replace it with "
                                       "this one?") != "replace":
                self.status.setText("not saved: the project there was kept")
                return None
        contents = gather_project(self.flow)
        self._saving = str(folder)
        self.status.setText(f"saving the project in {folder}…")
        worker = self.save_job.start(write_project, str(folder), total=0, **contents)
        self._set_buttons()
        return worker

    def _on_saved(self, folder) -> None:
        self.flow.project_folder = str(folder)
        self.status.setText(f"project saved in {folder}")

    def open_project(self, folder) -> list:
        """Open a project folder (through the plugin's reader); the tabs follow."""
        layers = open_project(self.viewer, folder)
        self.status.setText(f"project opened from {folder}: {len(layers)} layer(s)")
        return layers

    def save_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Project folder (empty, or a project to replace)")
        if folder:
            call_safely("Saving the project", self.save_project_to, folder)

    def open_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Project folder (with project.json)")
        if folder:
            call_safely("Opening the project", self.open_project, folder)

    def save_model_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to save the model in")
        if folder:
            path = call_safely("Saving the model", save_current_model, self.flow, folder)
            if path:
                self.status.setText(f"model saved in {path}")
