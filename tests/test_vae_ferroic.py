"""rVAE on the ferroic sample: the polarisation variant from the encoded angle.

Windows are centred on the unit-cell centres (the mean of the four A-site
columns nearest each B-site column), small enough (12 px, a = 20 px) to hold
only the B-site column, whose off-centring (0.12·a along the polarisation)
turns with the variant. A rotation-only rVAE (``translation=False``: a shift
latent would explain the off-centring as a shift) then explains the four
variants as four angles; peaks of the angle histogram define the variants and
they are matched to the truth (Hungarian) on the film (substrate excluded).
"""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial import cKDTree

from napari_rvae.analysis.angles import assign_variants, find_angle_peaks
from napari_rvae.analysis.clusters import agreement
from napari_rvae.patches import cut_windows
from napari_rvae.synth import make_sample
from napari_rvae.vae import Trainer, VAEConfig, build_model, encode

torch.set_num_threads(1)

FRAMES, WINDOW, EPOCHS, LATENT = 2, 12, 15, 1


def cell_centres(sample):
    """Sites table at the mean of the 4 A-sites nearest each B-site (per frame), and the
    B-site rows it keeps: those whose 4 nearest A-sites all lie within 0.9·a (at the image
    edge some A-sites of the cell are missing)."""
    b, a = sample["bsites"], sample["asites"]
    reach = 0.9 * json.loads(str(sample["params"]))["a"]
    y, x, ok = np.empty(len(b)), np.empty(len(b)), np.zeros(len(b), bool)
    for f in np.unique(b["frame"]):
        ia, ib = a["frame"] == f, b["frame"] == f
        dist, nn = cKDTree(np.c_[a["y"][ia], a["x"][ia]]).query(np.c_[b["y"][ib], b["x"][ib]], 4)
        y[ib], x[ib] = a["y"][ia][nn].mean(1), a["x"][ia][nn].mean(1)
        ok[ib] = dist.max(1) < reach
    keep = np.flatnonzero(ok)
    return pd.DataFrame({"frame": b["frame"][keep], "y": y[keep], "x": x[keep]}), keep


@pytest.mark.slow
def test_ferroic_variant_from_encoded_angle():
    """Variant from the encoded angle ≥ 95 % correct after optimal matching."""
    sample = make_sample("ferroic", seed=0, frames=FRAMES)
    sites, keep = cell_centres(sample)
    cut = cut_windows(sample["data"], sites, WINDOW, normalisation="global")
    truth = sample["bsites"]["variant"][keep][cut.rows]
    model = build_model(VAEConfig(arch="rvae", window=(WINDOW, WINDOW), latent=LATENT, translation=False), seed=0)
    Trainer(model, cut.windows, seed=0, threads=1, lr=1e-3).fit(EPOCHS)
    film = truth < 4
    angle = encode(model, cut.windows)["angle"].to_numpy()[film]
    peaks = find_angle_peaks(angle, max_peaks=4)["angle"].to_numpy()
    assert len(peaks) == 4
    accuracy = agreement(assign_variants(angle, peaks), truth[film])
    print(f"ferroic variant accuracy from the angle: {accuracy:.3f}")
    assert accuracy >= 0.95
