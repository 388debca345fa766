"""napari: one layer per channel named after it (the phase shown), several files or a folder as one movie."""

import numpy as np
import pytest

pytestmark = pytest.mark.gui

NAMES = np.array(["HeightRetrace", "AmplitudeRetrace", "PhaseRetrace"])


def test_channels_become_layers_phase_visible(make_napari_viewer, tmp_path):
    data = np.random.default_rng(0).random((3, 32, 40)).astype(np.float32)
    np.savez(tmp_path / "scan.npz", data=data, channels=NAMES, scale=np.array([0.01, 0.01]),
             units=np.array(["µm", "µm"]))
    viewer = make_napari_viewer()
    layers = viewer.open(tmp_path / "scan.npz", plugin="napari-rvae")
    assert [layer.name for layer in layers] == [f"scan {n}" for n in NAMES]
    assert [layer.visible for layer in layers] == [False, False, True]
    assert all(layer.data.shape == (1, 32, 40) for layer in layers)
    assert all(str(layer.units[1]) == "nanometer" and layer.scale[1] == pytest.approx(10.0) for layer in layers)


def test_folder_of_scans_opens_as_one_movie(make_napari_viewer, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for k in (1, 2, 10):
        np.savez(folder / f"PZT{k}.npz", data=rng.random((3, 32, 40)).astype(np.float32), channels=NAMES)
    viewer = make_napari_viewer()
    layers = viewer.open(folder, plugin="napari-rvae")
    assert len(layers) == 3 and layers[2].data.shape == (3, 32, 40)
    assert layers[2].metadata["files"][-1].endswith("PZT10.npz")
    many = viewer.open([folder / "PZT1.npz", folder / "PZT2.npz"], stack=True, plugin="napari-rvae")
    assert many[0].data.shape == (2, 32, 40)
