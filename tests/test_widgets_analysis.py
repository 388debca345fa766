"""Analysis dock driven like a user: cluster, density + NMF vs a bias loop, angle peaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyqtgraph as pg
import pytest

from napari_rvae.analysis.clusters import agreement
from napari_rvae.widgets import _workers
from napari_rvae.widgets.analysis_dock import AnalysisDock

pytestmark = pytest.mark.gui
T, N = 24, 150  # frames, sites per frame


def synthetic_sites(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Two populations (z0 ≈ ∓2) whose mix follows a triangular bias; 4 angle variants π/2 apart."""
    rng = np.random.default_rng(seed)
    frames = np.arange(T)
    bias = 1.0 - 2.0 * np.abs(2.0 * frames / (T - 1) - 1.0)  # −1 → +1 → −1
    share = np.clip(0.5 + 0.45 * bias, 0.0, 1.0)  # fraction of population 1 in each frame
    frame = np.repeat(frames, N)
    truth = (rng.uniform(size=T * N) < share[frame]).astype(np.int64)
    z0 = np.where(truth == 1, 2.0, -2.0) + rng.normal(0, 0.4, T * N)
    z1 = rng.normal(0, 0.4, T * N)
    variant = rng.integers(0, 4, T * N)
    angle = np.angle(np.exp(1j * (0.3 + variant * np.pi / 2 + rng.normal(0, 0.08, T * N))))
    sites = pd.DataFrame({"frame": frame, "y": rng.uniform(0, 63, T * N), "x": rng.uniform(0, 63, T * N),
                          "angle": angle, "z0": z0, "z1": z1})
    return sites, truth, bias


@pytest.fixture
def dock(make_napari_viewer):
    viewer = make_napari_viewer()
    sites, truth, bias = synthetic_sites()
    viewer.add_points(sites[["frame", "y", "x"]].to_numpy(), features=sites, name="sites")
    widget = AnalysisDock(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, widget, truth, bias


def _select(widget, names):
    for i in range(widget.columns_list.count()):
        item = widget.columns_list.item(i)
        item.setSelected(item.text() in names)


def test_defaults_are_angle_and_latents(dock):
    _, widget, _, _ = dock
    chosen = {item.text() for item in widget.columns_list.selectedItems()}
    assert chosen == {"angle", "z0", "z1"}
    assert widget.points_picker.layer().name == "sites"


def test_clusters_recover_populations(dock, qtbot):
    viewer, widget, truth, _ = dock
    _select(widget, ["z0", "z1"])
    widget.n_clusters.setValue(2)
    with qtbot.waitSignal(widget.cluster_job.finished, timeout=60_000):
        widget.cluster_button.click()
    assert widget.cluster_job.last_error is None
    layer = viewer.layers["sites"]
    assert "cluster" in layer.features
    assert agreement(layer.features["cluster"].to_numpy(), truth) >= 0.9
    # points coloured by cluster: exactly two face colours
    assert len(np.unique(np.round(layer.face_color, 3), axis=0)) == 2
    bars = [item for item in widget.fraction_plot.getPlotItem().items if isinstance(item, pg.BarGraphItem)]
    assert len(bars) == 2
    assert np.allclose(widget.fractions.sum(axis=1), 1.0)


def test_dynamics_nmf_and_loop(dock, qtbot, tmp_path):
    _, widget, truth, bias = dock
    path = tmp_path / "bias.csv"
    pd.DataFrame({"frame": np.arange(T), "bias": bias}).to_csv(path, index=False)
    widget.variable_combo.setCurrentText("z0")
    widget.n_components.setValue(2)
    widget.bias_path.setText(str(path))
    with qtbot.waitSignal(widget.dynamics_job.finished, timeout=60_000):
        widget.dynamics_button.click()
    assert widget.dynamics_job.last_error is None
    image = widget.density_image.image
    assert image.shape[0] == T
    curves = widget.loadings_plot.getPlotItem().listDataItems()
    assert len(curves) == 2  # one curve per component
    # the upper component's loading follows the true share of population 1
    share = np.bincount(np.repeat(np.arange(T), N), truth, T) / N
    assert np.corrcoef(widget.nmf.loadings[:, 1], share)[0, 1] > 0.9
    assert not widget.loop_plot.isHidden() and len(widget.loop_plot.getPlotItem().listDataItems()) == 2
    assert len(widget.area) == 2


def test_angle_peaks_spacing(dock):
    _, widget, _, _ = dock
    widget.angles_button.click()
    peaks = widget.peaks
    assert len(peaks) == 4
    assert np.allclose(peaks["spacing"], np.pi / 2, atol=0.05)
    assert "1.57" in widget.peaks_label.text()


def test_no_latents_is_a_notification(make_napari_viewer, monkeypatch):
    shown = []
    monkeypatch.setattr(_workers, "show_error", shown.append)
    viewer = make_napari_viewer()
    viewer.add_points(np.random.default_rng(0).uniform(0, 50, (30, 2)), name="plain")
    widget = AnalysisDock(viewer)
    widget.cluster_button.click()
    widget.angles_button.click()
    widget.dynamics_button.click()
    assert len(shown) == 3 and all("failed" in message for message in shown)
    assert "cluster" not in viewer.layers["plain"].features


def test_chemistry_map_from_the_current_model(dock, qtbot):
    """A hand-made decoder: z0 < 0 → a pristine graphene atom (three 6-rings), z0 ≥ 0 → a 5-ring atom."""
    from napari_rvae.io.sites import make_sites
    from napari_rvae.patches import cut_windows
    from napari_rvae.synth import graphene_movie
    from napari_rvae.widgets._model_link import model_link

    s = graphene_movie(0, frames=3, size=192, cc=7.0, noise=False, n_holes=0, grain=False, n_stone_wales=3)
    mask = (s["labels"] >= 2).astype(np.float32)
    a = s["atoms"][s["atoms"]["frame"] == 2]
    sites = make_sites(a["frame"], a["y"], a["x"], "atom", 0)
    cut = cut_windows(mask, sites, 40)
    n5, n6 = np.asarray(a["n5"])[cut.rows], np.asarray(a["n6"])[cut.rows]
    defect, pristine = np.flatnonzero(n5 > 0)[0], np.flatnonzero(n6 == 3)[0]
    windows = cut.windows[[pristine, defect]]

    def decoder(z):
        return windows[(np.asarray(z)[:, 0] >= 0).astype(int)]

    viewer, widget, _, _ = dock
    assert not widget.chemistry_button.isEnabled()  # no model yet
    model_link(viewer).set_model(decoder)
    assert widget.chemistry_button.isEnabled()
    widget.grid_d.setValue(12)
    with qtbot.waitSignal(widget.chemistry_job.finished, timeout=60_000):
        widget.chemistry_button.click()
    assert widget.chemistry_job.last_error is None
    chem = widget.chem
    left, right = chem.grid < 0, chem.grid >= 0
    assert (chem.n(6)[:, left] == 3).all() and (chem.n(5)[:, right] >= 1).all()
    image = widget.chem_image.image  # (x = z0, y = z1, rgb)
    assert image.shape == (12, 12, 3)
    assert (image[left, :, 1] == 255).all() and (image[left, :, 0] == 0).all()  # green = n6 only
    assert (image[right, :, 0] == 255).all()  # red = the 5-ring
    assert len(widget.chem_sites.data) == len(viewer.layers["sites"].data)  # encoded sites overlaid


def test_chemistry_tab_on_a_skip_rvae_trained_with_the_defaults(dock, qtbot):
    """A skip-rVAE trained with the defaults (windows of five spacings from the atom map, short
    training): the tab runs, takes the bond length from the model's recorded scale and says how much
    of the plane is physical (no error, no silent empty canvas)."""
    from napari_rvae.io.sites import make_sites
    from napari_rvae.patches import cut_windows
    from napari_rvae.synth import graphene_movie
    from napari_rvae.vae.train import train
    from napari_rvae.widgets._model_link import model_link

    s = graphene_movie(3, frames=2, size=160, cc=8.0, noise=False, n_holes=0, grain=False)
    mask = (s["labels"] >= 2).astype(np.float32)
    a = s["atoms"]
    cut = cut_windows(mask, make_sites(a["frame"], a["y"], a["x"], "atom", 0), 40)
    model = train(cut, arch="skip-rvae", epochs=2, threads=1)
    assert model.config.angle_symmetry == 3 and model.normalisation["site_spacing_px"] == pytest.approx(8.0, abs=0.3)
    viewer, widget, _, _ = dock
    model_link(viewer).set_model(model)
    widget.grid_d.setValue(10)
    with qtbot.waitSignal(widget.chemistry_job.finished, timeout=120_000):
        widget.chemistry_button.click()
    assert widget.chemistry_job.last_error is None
    chem = widget.chem
    assert chem is not None and chem.bond_length == pytest.approx(model.normalisation["site_spacing_px"])
    text = widget.status.text()
    assert chem.summary() in text and "of the latent plane unphysical" in text
    if not chem.physical.any():
        assert "no point of the plane decodes to rings" in text


def test_columns_follow_the_layer_features(dock, qtbot):
    viewer, widget, _, _ = dock
    layer = viewer.layers["sites"]
    _select(widget, ["z0"])
    features = layer.features.copy()
    features["z2"] = 0.0  # e.g. a retrained model with one more latent
    layer.features = features
    names = [widget.columns_list.item(i).text() for i in range(widget.columns_list.count())]
    assert "z2" in names
    chosen = {item.text() for item in widget.columns_list.selectedItems()}
    assert chosen == {"z0", "z2"}  # the user's choice kept, the new latent ticked by default
    assert widget.variable_combo.findText("z2") >= 0


def test_chemistry_stop(dock, qtbot):
    viewer, widget, _, _ = dock
    from napari_rvae.widgets._model_link import model_link

    def slow_decoder(z):  # blank windows, slowly: the job is still running when Stop is pressed
        import time
        time.sleep(0.05)
        return np.zeros((len(z), 16, 16), np.float32)

    model_link(viewer).set_model(slow_decoder)
    widget.grid_d.setValue(200)
    with qtbot.waitSignal(widget.chemistry_job.finished, timeout=60_000):
        widget.chemistry_button.click()
        assert widget.chemistry_stop.isEnabled()
        widget.chemistry_stop.click()
    assert widget.chemistry_job.last_error is None and widget.chem is None
    assert widget.status.text() == "chemistry map stopped" and not widget.chemistry_stop.isEnabled()
