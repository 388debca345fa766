"""Analysis dock: clusters, density vs frame with NMF (and hysteresis), angle histogram peaks.

A thin view over :mod:`napari_rvae.analysis`: every number shown is computed
by the core (:func:`~napari_rvae.analysis.clusters.cluster_sites`,
:func:`~napari_rvae.analysis.dynamics.density_vs_frame`,
:func:`~napari_rvae.analysis.dynamics.density_nmf`,
:func:`~napari_rvae.analysis.hysteresis.loop_area`,
:func:`~napari_rvae.analysis.angles.find_angle_peaks`); the dock only picks
the inputs and draws the results with pyqtgraph.
"""

from __future__ import annotations

import warnings

import napari
import numpy as np
import pyqtgraph as pg
from sklearn.exceptions import ConvergenceWarning
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QAbstractItemView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..analysis.angles import angle_histogram, find_angle_peaks
from ..analysis.clusters import cluster_fractions, cluster_sites
from ..analysis.dynamics import density_nmf, density_vs_frame
from ..analysis.hysteresis import loop_area, read_bias
from ..io.sites import latent_columns
from . import _colours as colours
from ._common import (LayerPicker, button, collapsible, dspin, form_label, has_latents, scroll_body,
                      set_widget_values, sites_from_layer, spin, tip, widget_values, write_columns)
from ._dock import RvaeDock, StatusLabel, progress_bar
from .analysis_chemistry import ChemistryTab
from ._plots import PALETTE, Plot, pen as _pen
from ._workers import BackgroundJob

METHODS = {"GMM (full covariance)": ("gmm", "full"), "GMM (diagonal)": ("gmm", "diag"), "k-means": ("kmeans", "full")}


class AnalysisDock(ChemistryTab, RvaeDock):
    """Cluster the sites, follow populations through the movie, find angle variants, PFM wall metrics."""

    dock_name = "analysis"

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(napari_viewer)
        self.nmf = None  # the last DensityNMF
        self.density = None  # the last FrameDensity
        self.peaks = None  # the last angle peaks table
        self.area = None  # the last loop area per component
        self.fractions = None
        self._watched = None  # the layer whose features event we listen to

        self.points_picker = LayerPicker(napari_viewer, (napari.layers.Points,), "Points layer (sites) whose features hold the latents", prefer=has_latents, role="sites")
        self.status = StatusLabel()
        self.bias_path = tip(QLineEdit(), "Optional CSV (frame, bias) or sample .npz with one bias per frame: loadings "
                             "and PFM metrics are plotted against it (a sample movie's own bias is used when empty)")
        self.bias_path.setPlaceholderText("bias CSV / .npz (optional)")
        browse = button("…", "Choose a bias file", self._browse_bias)
        browse.setMaximumWidth(30)
        bias_row = QHBoxLayout()
        bias_row.addWidget(self.bias_path, 1)
        bias_row.addWidget(browse)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._clusters_tab(), "Clusters")
        self.tabs.addTab(self._dynamics_tab(), "Dynamics")
        self.tabs.addTab(self._angles_tab(), "Angles")
        self.tabs.addTab(self._chemistry_tab(), "Chemistry")
        from .analysis_pfm import PfmTab

        self.pfm = PfmTab(self)
        self.tabs.addTab(self.pfm, "PFM")

        top = QFormLayout()
        top.addRow(form_label("points", "Sites layer with latent features (angle, z0 …)"), self.points_picker)
        top.addRow(form_label("bias", "Bias per frame"), bias_row)
        layout = scroll_body(self)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)

        self.cluster_job = BackgroundJob("Clustering the sites", on_return=self._on_clusters, uses_torch=False, parent=self)
        self.chemistry_job = BackgroundJob("Chemistry map", on_return=self._on_chemistry, uses_torch=True, parent=self,
                                           on_finish=lambda: self.chemistry_stop.setEnabled(False))
        self._chem_stop = [False]
        self.chem = None  # the last ChemistryMap
        self.link = self.flow
        self.link.model_changed.connect(self._on_model)
        self._on_model(self.link.model)
        self.dynamics_job = BackgroundJob("Density vs frame and NMF", on_return=self._on_dynamics, uses_torch=False, parent=self)
        layout.insertWidget(layout.count() - 1, progress_bar(self.cluster_job, self.dynamics_job, self.chemistry_job,
                                                             self.pfm.frames_job, self.pfm.regions_job))
        self.points_picker.layer_changed.connect(self._on_layer)
        self._on_layer(self.points_picker.layer())
        self._inputs = {"method": self.method_combo, "clusters": self.n_clusters, "seed": self.seed,
                        "variable": self.variable_combo, "components": self.n_components, "bins": self.n_grid,
                        "bandwidth": self.bandwidth, "bias": self.bias_path, "offset": self.offset,
                        "angle_bins": self.bins, "prominence": self.prominence, "grid": self.grid_d,
                        "span": self.span, "threshold": self.threshold, **self.pfm.inputs}
        self.flow.register(self.dock_name, self)

    def dock_state(self) -> dict:
        return {**widget_values(self._inputs), "tab": self.tabs.currentIndex()}

    def restore_state(self, state: dict) -> None:
        set_widget_values(self._inputs, state)
        if isinstance(state.get("tab"), int):
            self.tabs.setCurrentIndex(state["tab"])

    def bias(self, n_frames: int) -> np.ndarray | None:
        """One bias value per frame: from the bias file, else the movie's own (samples carry it)."""
        path = self.bias_path.text().strip()
        if path:
            return read_bias(path, np.arange(n_frames))
        movie = self.flow.layer("movie")
        values = (movie.metadata or {}).get("bias") if movie is not None else None
        if values is None:
            return None
        values = np.asarray(values, dtype=np.float64).ravel()
        if len(values) < n_frames:
            raise ValueError(f"the movie's bias has {len(values)} values for {n_frames} frames; give a bias file")
        return values[:n_frames]

    # ---------------------------------------------------------------- tabs
    def _clusters_tab(self) -> QWidget:
        self.columns_list = tip(QListWidget(), "Feature columns to cluster on (angle is treated as circular); default angle + z*")
        self.columns_list.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        self.columns_list.setMaximumHeight(90)
        self.method_combo = tip(QComboBox(), "Clustering method: Gaussian mixture (full or diagonal covariance) or k-means")
        self.method_combo.addItems(list(METHODS))
        self.n_clusters = spin(2, 1, 20, "Number of clusters")
        self.seed = spin(0, 0, 2**31 - 1, "Random seed of the initialisation (same seed = same clusters)")
        self.cluster_button = button("Cluster sites", "Cluster the sites; writes a 'cluster' column into the layer's features and colours the points", self.run_clusters)
        self.fraction_plot = Plot("cluster fractions vs frame", "frame", "fraction", integer_x=True, viewer=self.viewer)
        advanced, form2 = collapsible("Advanced", [
            (form_label("seed", "Random seed"), self.seed),
        ])
        form = QFormLayout()
        form.addRow(form_label("columns", "Feature columns"), self.columns_list)
        form.addRow(form_label("method", "Clustering method"), self.method_combo)
        form.addRow(form_label("clusters", "Number of clusters"), self.n_clusters)
        widget = QWidget()
        layout = QVBoxLayout(widget)
        layout.addLayout(form)
        layout.addWidget(advanced)
        layout.addWidget(self.cluster_button)
        layout.addWidget(self.fraction_plot, 1)
        return widget

    def _dynamics_tab(self) -> QWidget:
        self.variable_combo = tip(QComboBox(), "Variable whose distribution is followed frame by frame (angle: circular)")
        self.n_components = spin(2, 1, 10, "Number of NMF components (populations)")
        self.n_grid = spin(128, 16, 1024, "Number of value bins of the density image", step=16)
        self.bandwidth = dspin(0.075, 0.005, 2.0, "Kernel width in standard deviations of the variable (paper: 0.075)", 0.005, 3)
        self.dynamics_button = button("Density + NMF", "Density of the variable in every frame, factorised into populations (NMF)", self.run_dynamics)
        self.density_plot = Plot("density vs frame", "frame", "value", integer_x=True, viewer=self.viewer)
        self.density_image = pg.ImageItem()
        self.density_image.setColorMap(pg.colormap.get("viridis"))
        self.density_plot.addItem(self.density_image)
        self.loadings_plot = Plot("NMF loadings vs frame", "frame", "loading", integer_x=True, viewer=self.viewer)
        self.loop_plot = Plot("loadings vs bias", "bias", "loading", viewer=self.viewer)
        self.loop_plot.setVisible(False)
        advanced, _ = collapsible("Advanced", [
            (form_label("bins", "Value bins"), self.n_grid),
            (form_label("bandwidth", "Kernel width"), self.bandwidth),
        ])
        form = QFormLayout()
        form.addRow(form_label("variable", "Variable"), self.variable_combo)
        form.addRow(form_label("components", "NMF components"), self.n_components)
        widget = QWidget()
        layout = QVBoxLayout(widget)
        layout.addLayout(form)
        layout.addWidget(advanced)
        layout.addWidget(self.dynamics_button)
        layout.addWidget(self.density_plot, 1)
        layout.addWidget(self.loadings_plot, 1)
        layout.addWidget(self.loop_plot, 1)
        return widget

    def _angles_tab(self) -> QWidget:
        self.offset = dspin(0.0, -np.pi, np.pi, "Angle offset (radians) added before wrapping to [−π, π): moves a peak away from the edge", 0.05, 3)
        self.bins = spin(90, 12, 720, "Number of histogram bins over one turn")
        self.prominence = dspin(0.15, 0.0, 0.99, "Minimum peak prominence, as a fraction of the highest peak", 0.05, 2)
        self.angles_button = button("Find angle peaks", "Histogram of the angle with its peaks and their spacing", self.run_angles)
        self.angle_plot = Plot("angle histogram", "angle (rad)", "density", viewer=self.viewer)
        self.peaks_label = QLabel("")
        self.peaks_label.setWordWrap(True)
        self.peaks_label.setToolTip("Peak positions and the spacing to the next peak (radians and degrees)")
        advanced, _ = collapsible("Advanced", [
            (form_label("bins", "Histogram bins"), self.bins),
            (form_label("prominence", "Minimum peak prominence"), self.prominence),
        ])
        form = QFormLayout()
        form.addRow(form_label("offset", "Angle offset (radians)"), self.offset)
        widget = QWidget()
        layout = QVBoxLayout(widget)
        layout.addLayout(form)
        layout.addWidget(advanced)
        layout.addWidget(self.angles_button)
        layout.addWidget(self.angle_plot, 1)
        layout.addWidget(self.peaks_label)
        return widget

    # ------------------------------------------------------------- helpers
    def layer(self):
        return self.points_picker.layer()

    def _on_layer(self, layer) -> None:
        if self._watched is not None:
            try:
                self._watched.events.features.disconnect(self._on_features)
            except Exception:  # already gone: nothing to undo
                pass
        self._watched = layer
        if layer is not None:
            layer.events.features.connect(self._on_features)
        self._fill_columns(layer, keep=False)

    def _on_features(self, *_event) -> None:
        """The layer's features changed (latents written, a cluster column…): refresh, keeping the choices."""
        self._fill_columns(self._watched, keep=True)

    def _fill_columns(self, layer, keep: bool) -> None:
        columns = [] if layer is None else [str(c) for c in layer.features.columns]
        latents = latent_columns(layer.features) if layer is not None and len(columns) else []
        chosen = {item.text() for item in self.columns_list.selectedItems()} if keep else set()
        known = {self.columns_list.item(i).text() for i in range(self.columns_list.count())} if keep else set()
        self.columns_list.clear()
        self.columns_list.addItems(columns)
        for i, name in enumerate(columns):
            default = name == "angle" or (name[:1] == "z" and name[1:].isdigit())
            self.columns_list.item(i).setSelected(name in chosen if name in known else default)
        current = self.variable_combo.currentText()
        self.variable_combo.clear()
        numeric = [c for c in latents if c not in ("dx", "dy")] or columns
        self.variable_combo.addItems(numeric)
        if current in numeric:
            self.variable_combo.setCurrentText(current)

    def _sites(self):
        layer = self.layer()
        if layer is None:
            raise ValueError("choose a points layer of sites first")
        return sites_from_layer(layer)

    def _browse_bias(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Bias per frame", "", "Bias (*.csv *.npz)")
        if path:
            self.bias_path.setText(path)

    # ------------------------------------------------------------ clusters
    def run_clusters(self):
        """Cluster in the background; returns the worker."""
        sites = self._sites()
        columns = [item.text() for item in self.columns_list.selectedItems()]
        columns = columns or [c for c in latent_columns(sites) if c not in ("dx", "dy")]
        if not columns:
            raise ValueError("the sites have no latent columns (angle, z0 …); encode them with a model "
                             "or tick the feature columns to cluster on")
        columns = _refuse_collapsed(sites, columns, "clusters", self.link.model)
        method, covariance = METHODS[self.method_combo.currentText()]
        return self.cluster_job.start(cluster_sites, sites, columns, self.n_clusters.value(), method=method,
                                      covariance=covariance, seed=self.seed.value())

    def _on_clusters(self, table) -> None:
        layer = self.layer()
        if layer is None or len(layer.data) != len(table):
            raise ValueError("the points layer changed while clustering; cluster again")
        write_columns(layer, table, ["cluster"])
        scale = colours.colour_scale(table, "cluster")
        layer.face_color = colours.row_colours(table, scale)
        self.fractions = cluster_fractions(table)
        plot = self.fraction_plot
        plot.clear()
        frames = self.fractions.index.to_numpy()
        bottom = np.zeros(len(frames))
        for k, label in enumerate(self.fractions.columns):
            height = self.fractions[label].to_numpy()
            colour = colours.row_colours(table.loc[table["cluster"] == label].head(1), scale)[0]
            brush = pg.mkBrush(*(np.asarray(colour[:3]) * 255).astype(int))
            plot.addItem(pg.BarGraphItem(x=frames, y0=bottom, height=height, width=0.8, brush=brush, name=f"cluster {label}"))
            bottom = bottom + height
        plot.setYRange(0, 1)
        sizes = table["cluster"].value_counts().sort_index()
        self.status.setText(f"{len(table)} sites in {len(self.fractions.columns)} clusters "
                            f"({', '.join(f'{k}: {v}' for k, v in sizes.items())}); 'cluster' column written")

    # ------------------------------------------------------------ dynamics
    def run_dynamics(self):
        """Density vs frame and NMF in the background; returns the worker."""
        sites = self._sites()
        variable = self.variable_combo.currentText()
        if not variable or variable not in sites:
            raise ValueError("choose a variable (angle or a latent z*) first")
        _refuse_collapsed(sites, [variable], "NMF populations", self.link.model)
        frame_ids = np.arange(int(sites["frame"].max()) + 1)
        bias = self.bias(len(frame_ids))
        return self.dynamics_job.start(
            _density_and_nmf, sites["frame"].to_numpy(), sites[variable].to_numpy(), frame_ids, variable,
            self.n_grid.value(), self.bandwidth.value(), self.n_components.value(), bias,
        )

    def _on_dynamics(self, result) -> None:
        density, nmf, bias, areas = result
        self.density, self.nmf, self.area = density, nmf, areas
        grid = density.grids[0]
        step = grid[1] - grid[0]
        image = density.density
        self.density_image.setImage(image, autoLevels=True)
        self.density_image.setRect(pg.QtCore.QRectF(density.frames[0] - 0.5, grid[0] - step / 2,
                                                    len(density.frames), step * len(grid)))
        self.density_plot.setLabel("left", density.names[0] + (" (rad)" if density.names[0] == "angle" else ""))
        self.density_plot.autoRange()
        self.loadings_plot.clear()
        for k in range(nmf.loadings.shape[1]):
            self.loadings_plot.plot(nmf.frames, nmf.loadings[:, k], pen=_pen(k), symbol="o", symbolSize=4,
                                    symbolBrush=PALETTE[k % len(PALETTE)], name=f"component {k}")
        self.loop_plot.clear()
        self.loop_plot.setVisible(bias is not None)
        text = f"NMF: {nmf.loadings.shape[1]} components, relative error {nmf.error:.3f}"
        if not getattr(nmf, "converged", True):
            text += " (stopped at the iteration limit)"
        if bias is not None:
            for k in range(nmf.loadings.shape[1]):
                self.loop_plot.plot(bias, nmf.loadings[:, k], pen=_pen(k), symbol="o", symbolSize=4,
                                    symbolBrush=PALETTE[k % len(PALETTE)], name=f"comp. {k}: area {areas[k]:.3g}")
            text += "; loop areas " + ", ".join(f"{a:.3g}" for a in areas) + " (bias × loading)"
        self.status.setText(text)

    # -------------------------------------------------------------- angles
    def run_angles(self) -> None:
        """Histogram and peaks of the angle (fast: runs in the GUI thread)."""
        sites = self._sites()
        if "angle" not in sites:
            raise ValueError("the sites have no 'angle' column; encode them with an rVAE first")
        _refuse_collapsed(sites, ["angle"], "angle peaks", self.link.model)
        angle = sites["angle"].to_numpy()
        offset, bins = self.offset.value(), self.bins.value()
        centres, density = angle_histogram(angle, bins, offset=offset)
        peaks = find_angle_peaks(angle, bins=bins, offset=offset, prominence=self.prominence.value())
        self.peaks = peaks
        plot = self.angle_plot
        plot.clear()
        width = centres[1] - centres[0]
        plot.addItem(pg.BarGraphItem(x=centres, height=density, width=width, brush=pg.mkBrush(150, 150, 200),
                                     pen=pg.mkPen(None)))
        for a in peaks["angle"]:
            plot.addItem(pg.InfiniteLine(pos=float(a), angle=90, pen=pg.mkPen((214, 39, 40), width=2)))
        plot.setXRange(-np.pi, np.pi)
        if len(peaks):
            rows = [f"{a:+.3f} rad ({np.degrees(a):+.1f}°) → next {s:.3f} rad ({np.degrees(s):.1f}°)"
                    for a, s in zip(peaks["angle"], peaks["spacing"])]
            self.peaks_label.setText(f"{len(peaks)} peaks, mean spacing {peaks['spacing'].mean():.3f} rad "
                                     f"({np.degrees(peaks['spacing'].mean()):.1f}°)\n" + "\n".join(rows))
        else:
            self.peaks_label.setText("no peaks above the noise (a flat or single-variant distribution)")


def _refuse_collapsed(sites, columns, what: str, model=None) -> list:
    """Say that the chosen latents carry no information instead of reporting structure in them
    (:mod:`napari_rvae.analysis.collapse`); returns the columns without the collapsed latents
    (standardised, their noise would split the sites). Feature columns that are not latents are
    not judged. The current model's own check after training (reconstructions against the mean
    window) is the first word: latents can spread and still be noise."""
    from ..analysis.collapse import check_latent_table, fixes

    latents = [c for c in columns if c in latent_columns(sites)]
    if not latents:
        return list(columns)
    recorded = (getattr(model, "training_settings", None) or {}).get("latent_check") or {}
    if recorded.get("informative") is False:
        raise ValueError(f"the current model learned nothing (its latents collapsed or carry no information: "
                         f"reconstructions no better than the mean window), so {what} would be noise. "
                         f"Retrain: {fixes(model)}")
    check = check_latent_table(sites[["frame"] + latents] if "frame" in sites else sites[latents])
    dead = [c for c in latents if c in check.collapsed]
    if not check.informative or len(dead) == len(latents):
        spreads = ", ".join(f"{c} {check.spread[c]:.2g}" for c in dead)
        raise ValueError(f"{', '.join(dead)} collapsed (spread {spreads}): the model learned nothing there, so "
                         f"{what} would be noise. Retrain: {fixes()}")
    return [c for c in columns if c not in dead]


def _density_and_nmf(frames, values, frame_ids, name, n_grid, bandwidth, n_components, bias):
    """Background part of the Dynamics tab (core calls only)."""
    density = density_vs_frame(frames, values, n_grid=n_grid, bandwidth=bandwidth, circular=name == "angle",
                               frame_ids=frame_ids, name=name)
    with warnings.catch_warnings(record=True) as caught:  # said once in the status line, not as a popup
        warnings.simplefilter("always", ConvergenceWarning)
        nmf = density_nmf(density, n_components)
    nmf.converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    areas = None
    if bias is not None:
        areas = [loop_area(bias, nmf.loadings[:, k]) for k in range(nmf.loadings.shape[1])]
    return density, nmf, bias, areas
