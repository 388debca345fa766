"""The Analysis dock's PFM tab: switching degree, wall count, wall length and curvature per frame.

Two sources, one plot: **whole frames** (the phase movie's domain map,
:func:`napari_rvae.detect.analyse_walls` → :func:`napari_rvae.analysis.pfm_frames.frame_wall_metrics`)
and **latent regions** (windows centred on the wall sites, cut from the frame Δ later,
:func:`napari_rvae.analysis.pfm.wall_metrics`, averaged per frame and per ``cluster`` of
the sites by :func:`napari_rvae.analysis.pfm_frames.region_metrics`). Each is plotted
against the frame or against the bias.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..io.units import pixel_size_nm
from ._common import button, dspin, form_label, sites_from_layer, spin, tip
from ._plots import Plot, brush, pen
from ._workers import BackgroundJob

LABELS = {"switching_degree": ("switching degree", "D_s = 2f − 1"), "wall_count": ("wall count", "walls"),
          "wall_length": ("wall length", "length"), "curvature": ("curvature", "curvature")}


def whole_frames_job(phase, unit, pixel_nm, smooth):
    """Background: domain map of the phase movie, then the metrics of every frame."""
    from ..analysis.pfm_frames import frame_wall_metrics
    from ..detect.walls import analyse_walls

    walls = analyse_walls(phase, unit=unit, pixel_size_nm=pixel_nm, smooth=smooth)
    return frame_wall_metrics(walls.domains, walls.reliable, pixel_size_nm=pixel_nm)


def regions_job(phase, sites, window, delay, pixel_nm):
    """Background: wall-centred windows Δ frames later, their metrics, averaged per frame and region."""
    from ..analysis.pfm import wall_metrics, wall_windows
    from ..analysis.pfm_frames import region_metrics

    cut = wall_windows(phase, sites, window=window, delay=delay, normalisation="none")
    if len(cut) == 0:
        raise ValueError(f"no {window}-px window fits around the wall sites {delay} frame(s) later; "
                         "use a smaller window or delay")
    size = None if pixel_nm is None else float(np.sqrt(pixel_nm[0] * pixel_nm[1]))
    metrics = wall_metrics(cut.windows, pixel_size_nm=size)
    regions = sites["cluster"].to_numpy()[cut.rows] if "cluster" in sites else np.zeros(len(cut), int)
    return region_metrics(metrics, cut.frames, regions)


class PfmTab(QWidget):
    """The tab; ``dock`` is the Analysis dock (its workflow, bias and status line)."""

    def __init__(self, dock) -> None:
        super().__init__()
        self.dock = dock
        self.frames_table = None  # per whole frame
        self.regions_table = None  # per (region, frame)
        self.frames_job = BackgroundJob("PFM metrics of whole frames", on_return=self._on_frames, uses_torch=False,
                                        parent=self)
        self.regions_job = BackgroundJob("PFM metrics per latent region", on_return=self._on_regions,
                                         uses_torch=False, parent=self)
        self.metric_combo = tip(QComboBox(), "Which metric to plot")
        self.metric_combo.addItems([v[0] for v in LABELS.values()])
        self.axis_combo = tip(QComboBox(), "Plot against the frame number or the bias of each frame "
                              "(from the bias file, or the movie's own bias for the samples)")
        self.axis_combo.addItems(["frame", "bias"])
        self.smooth = dspin(0.5, 0.0, 5.0, "Smoothing (pixels) of the phase before the domain split", 0.25, 2)
        self.window = spin(40, 8, 256, "Width of the wall-centred windows (pixels; paper 000: 40)", suffix=" px")
        self.delay = spin(1, 0, 100, "Δ: windows are cut this many frames after their wall (0 = same frame)")
        self.frames_button = button("Whole frames", "Domain map of the phase movie (flow's movie layer), then the "
                                    "four metrics of every frame", self.run_frames)
        self.regions_button = button("Per latent region", "Windows at the wall sites (their 'cluster' column = "
                                     "latent region; assign it in the explorer or the Clusters tab), metrics "
                                     "averaged per frame and region", self.run_regions)
        self.plot = Plot("", "frame", "switching degree", viewer=dock.viewer, min_height=170)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        form = QFormLayout()
        form.addRow(form_label("metric", self.metric_combo.toolTip()), self.metric_combo)
        form.addRow(form_label("against", self.axis_combo.toolTip()), self.axis_combo)
        form.addRow(form_label("smoothing", self.smooth.toolTip()), self.smooth)
        form.addRow(form_label("window", self.window.toolTip()), self.window)
        form.addRow(form_label("delay Δ", self.delay.toolTip()), self.delay)
        row = QHBoxLayout()
        row.addWidget(self.frames_button)
        row.addWidget(self.regions_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.summary)
        self.metric_combo.currentTextChanged.connect(lambda *_: self.redraw())
        self.axis_combo.currentTextChanged.connect(lambda *_: self.redraw())
        self.inputs = {"pfm_metric": self.metric_combo, "pfm_against": self.axis_combo, "pfm_smoothing": self.smooth,
                       "pfm_window": self.window, "pfm_delay": self.delay}

    # ------------------------------------------------------------------ inputs
    def _phase(self):
        layer = self.dock.flow.layer("movie")
        if layer is None:
            raise ValueError("open the PFM phase movie first (it becomes the workflow's movie)")
        phase = np.asarray(layer.data, dtype=np.float32)
        if phase.ndim == 2:
            phase = phase[None]
        metadata = layer.metadata or {}
        return phase, metadata.get("value_unit"), pixel_size_nm(layer.scale, [str(u) for u in layer.units])

    def run_frames(self):
        phase, unit, pixel_nm = self._phase()
        self._pixel_nm = pixel_nm
        return self.frames_job.start(whole_frames_job, phase, unit, pixel_nm, self.smooth.value())

    def run_regions(self):
        phase, _, pixel_nm = self._phase()
        layer = self.dock.layer()
        if layer is None:
            raise ValueError("choose the wall sites (Detect with method 'walls (PFM)')")
        sites = sites_from_layer(layer)
        self._pixel_nm = pixel_nm
        return self.regions_job.start(regions_job, phase, sites, self.window.value(), self.delay.value(), pixel_nm)

    # ----------------------------------------------------------------- results
    def _on_frames(self, table) -> None:
        self.frames_table = table
        self.redraw()
        walls = table["wall_count"]
        self.summary.setText(f"{len(table)} frames: switching degree {table['switching_degree'].iloc[0]:+.2f} → "
                             f"{table['switching_degree'].iloc[-1]:+.2f}; {walls.min()}–{walls.max()} walls per frame")
        self.dock.flow.note("pfm", {"frames": int(len(table)), "smoothing": self.smooth.value()})

    def _on_regions(self, table) -> None:
        self.regions_table = table
        self.redraw()
        regions = sorted(table["region"].unique())
        self.summary.setText(f"{len(regions)} latent region(s) ({', '.join(map(str, regions))}) over "
                             f"{table['frame'].nunique()} frames; windows {self.window.value()} px, Δ = {self.delay.value()}")

    def _x(self, frames: np.ndarray) -> tuple[np.ndarray, str]:
        if self.axis_combo.currentText() == "bias":
            bias = self.dock.bias(int(np.max(frames)) + 1 if len(frames) else 1)
            if bias is None:
                raise ValueError("no bias: give a bias file above (or use a sample with its bias)")
            return bias[np.asarray(frames, dtype=int)], "bias"
        return np.asarray(frames, dtype=float), "frame"

    def metric(self) -> str:
        label = self.metric_combo.currentText()
        return next(k for k, (name, _) in LABELS.items() if name == label)

    def redraw(self) -> None:
        from ._workers import call_safely

        call_safely("Plotting the PFM metrics", self._redraw)

    def _redraw(self) -> None:
        key = self.metric()
        nm = getattr(self, "_pixel_nm", None) is not None
        column = {"wall_length": "wall_length_nm", "curvature": "curvature_per_nm"}.get(key, key) if nm else key
        unit = {"wall_length": " (nm)" if nm else " (px)", "curvature": " (1/nm)" if nm else " (1/px)"}.get(key, "")
        plot = self.plot
        plot.clear()
        x_name = "frame"
        if self.frames_table is not None:
            table = self.frames_table
            x, x_name = self._x(table["frame"].to_numpy())
            plot.plot(x, table[column if column in table else key].to_numpy(), pen=pen(7, 2.5), symbol="o",
                      symbolSize=4, symbolBrush=brush(7), name="whole frames")
        if self.regions_table is not None:
            table = self.regions_table
            for k, (region, part) in enumerate(table.groupby("region")):
                x, x_name = self._x(part["frame"].to_numpy())
                values = part[column if column in part else key].to_numpy()
                plot.plot(x, values, pen=pen(k), symbol="o", symbolSize=4, symbolBrush=brush(k),
                          name=f"region {region}")
        integer_x = x_name == "frame"
        plot.set_integer_x(integer_x)
        plot.setLabel("bottom", x_name)
        plot.setLabel("left", LABELS[key][0] + unit)
        plot.setTitle(f"{LABELS[key][0]} vs {x_name}")
