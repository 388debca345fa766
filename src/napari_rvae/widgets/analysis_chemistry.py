"""The Analysis dock's Chemistry tab (a mixin of :class:`~.analysis_dock.AnalysisDock`).

Decodes a D × D grid of the latent plane (z0, z1) with the current model and counts the
5-, 6- and 7-membered rings at each decoded window's centre atom
(:func:`napari_rvae.analysis.chemistry.chemistry_map`), with the encoded sites on top.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from qtpy.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..analysis.chemistry import chemistry_map
from ._common import button, collapsible, dspin, form_label, spin
from ._plots import Plot


class ChemistryTab:
    """The tab's widgets and actions; mixed into the Analysis dock."""

    def _chemistry_tab(self) -> QWidget:
        self.grid_d = spin(50, 4, 400, "Grid points per latent axis (D × D windows are decoded; the paper uses 200)")
        self.span = dspin(3.0, 0.1, 20.0, "The grid covers −span … +span on latents z0 (x) and z1 (y)", 0.5, 2)
        self.threshold = dspin(0.0, 0.0, 0.99, "Decoded pixels above this value are atom pixels; auto: 0.5 where the "
                               "model's windows were 0–1 (atom probability map, or each window scaled to 0–1), else "
                               "halfway between the decoded background and atom peaks", 0.05, 2)
        self.threshold.setSpecialValueText("auto")
        self.model_label = QLabel("")
        self.model_label.setWordWrap(True)
        self.model_label.setToolTip("The current model (trained or loaded in the Train VAE dock)")
        self.chemistry_button = button("Chemistry map", "Decode a D × D grid of (z0, z1) and count 5-, 6-, 7-rings at each window's centre atom", self.run_chemistry)
        self.chemistry_stop = button("Stop", "Stop the chemistry map after the current batch of windows", lambda: self.chemistry_job.stop())
        self.chemistry_stop.setEnabled(False)
        self.chem_plot = Plot("rings at the centre atom: R = n5, G = n6, B = n7", "z0", "z1", viewer=self.viewer)
        self.chem_plot.setAspectLocked(True)
        self.chem_image = pg.ImageItem()
        self.chem_plot.addItem(self.chem_image)
        self.chem_sites = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush(255, 255, 255, 90))
        self.chem_plot.addItem(self.chem_sites)
        advanced, _ = collapsible("Advanced", [
            (form_label("threshold", "Atom threshold"), self.threshold),
        ])
        form = QFormLayout()
        form.addRow(form_label("model", "Current model"), self.model_label)
        form.addRow(form_label("D", "Grid points per axis"), self.grid_d)
        form.addRow(form_label("span", "Latent range ±"), self.span)
        widget = QWidget()
        layout = QVBoxLayout(widget)
        layout.addLayout(form)
        layout.addWidget(advanced)
        row = QHBoxLayout()
        row.addWidget(self.chemistry_button, 1)
        row.addWidget(self.chemistry_stop)
        layout.addLayout(row)
        layout.addWidget(self.chem_plot, 1)
        return widget

    # ----------------------------------------------------------- chemistry
    def _on_model(self, model) -> None:
        config = getattr(model, "config", None)
        if model is None:
            text = "no model yet: train or load one in the Train VAE dock"
        elif config is not None:
            text = f"{config.arch}, {config.latent} latents"
        else:
            text = getattr(model, "__name__", "decoder")
        self.model_label.setText(text)
        self.chemistry_button.setEnabled(model is not None)

    def run_chemistry(self):
        """Decode the latent grid and count rings in the background; returns the worker."""
        model = self.link.model
        if model is None:
            raise ValueError("no model: train or load one in the Train VAE dock first")
        self._chem_stop = [False]
        self.chemistry_stop.setEnabled(True)
        return self.chemistry_job.start(_chemistry, model, self.grid_d.value(), self.span.value(),
                                        self.threshold.value() or "auto", self._chem_stop,
                                        stop=self._request_chem_stop)

    def _request_chem_stop(self) -> None:
        self._chem_stop[0] = True

    def _on_chemistry(self, chem) -> None:
        if chem is None:
            self.status.setText("chemistry map stopped")
            return
        self.chem = chem
        rgb = chem.rgb()
        grid = chem.grid
        step = (grid[-1] - grid[0]) / max(len(grid) - 1, 1)
        # rgb is [row = z1, column = z0]; ImageItem's first axis is x
        self.chem_image.setImage((np.transpose(rgb, (1, 0, 2)) * 255).astype(np.uint8), levels=(0, 255))
        self.chem_image.setRect(pg.QtCore.QRectF(grid[0] - step / 2, grid[0] - step / 2,
                                                 step * len(grid), step * len(grid)))
        layer = self.layer()
        if layer is not None and {"z0", "z1"} <= set(layer.features.columns):
            z = layer.features[["z0", "z1"]].to_numpy(dtype=float)
            z = z[np.isfinite(z).all(axis=1)]
            self.chem_sites.setData(z[:, 0], z[:, 1])
        else:
            self.chem_sites.setData([], [])
        self.chem_plot.autoRange()
        self.status.setText(f"chemistry map {len(grid)} × {len(grid)} (bond length {chem.bond_length:.2f} px, "
                            f"atom threshold {chem.params['threshold']:.2g}): {chem.summary()}; "
                            "black = unphysical; dots = encoded sites")



class _Stopped(Exception):
    pass


def _chemistry(model, d, span, threshold, stop_flag):
    """Background part of the Chemistry tab; ``None`` when stopped (``stop_flag[0]`` set)."""

    def progress(_fraction):
        if stop_flag[0]:
            raise _Stopped

    try:
        return chemistry_map(model, d, span=span, threshold=threshold, progress=progress)
    except _Stopped:
        return None


