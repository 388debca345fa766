"""Shift-VAE on grid windows of 2D lattices (paper 004): the content latent's map follows the true
order parameter η, with the defaults of ``analyze --grid STEP --arch shift-vae``.

Truth: the generators' ``order_parameter`` (η per pixel) at the window centres. The content latent
is chosen without the truth, as the beta search does: the one whose map is smoothest (FFT score).
Before the 2D recipe (:mod:`napari_rvae.vae.shiftvae`, random training windows) the same runs gave
|r| 0.24 (shift-lattice seed 3) and 0.018 (island-lattice seed 11). Each slow test takes 1–2
minutes on 2 shared cores (≈ 4 000 windows × 40 epochs; 56 and 63 s measured).
"""

import numpy as np
import pytest

from napari_rvae.analysis.smoothness import smoothness
from napari_rvae.patches import grid_sites, random_sites_like
from napari_rvae.pipeline import demo_settings, run_pipeline
from napari_rvae.synth import island_lattice, shift_lattice

STEP = 4  # grid step (pixels), as `analyze --grid 4`


def _smoothest_r(sample) -> tuple[float, dict]:
    """|Pearson r| between η at the grid-window centres and the smoothest content latent's map."""
    data, eta = sample["data"], sample["order_parameter"]
    settings = demo_settings(arch="shift-vae", threads=1)  # the CLI's defaults for --arch shift-vae
    sites = grid_sites(data.shape, 24, step=STEP)  # what `analyze --grid 4` cuts
    result = run_pipeline(data, settings, sites)
    table = result.sites
    ny, nx = table["y"].nunique(), table["x"].nunique()
    truth = eta[table["y"].round().astype(int), table["x"].round().astype(int)]
    window = result.model.config.window[0]
    found = {}
    for k in range(result.model.config.latent):
        z = table[f"z{k}"].to_numpy()
        found[f"z{k}"] = (smoothness(z.reshape(ny, nx), step=STEP, window=window), abs(np.corrcoef(z, truth)[0, 1]))
    best = max(found, key=lambda name: found[name][0])
    return found[best][1], found


@pytest.mark.slow
def test_shift_lattice_held_out_seed():
    """The shift-lattice sample (256 px) with a seed not used to choose the defaults (chosen on
    seeds 0 and 1, and 11 at 160 px). Before (previous defaults): |r| 0.24 (smoothest latent;
    0.001 the other) on this image. Seed 5 still fails (|r| 0.12, docs/analysis-2.md)."""
    r, found = _smoothest_r(shift_lattice(seed=3))
    assert r >= 0.8, found


@pytest.mark.slow
def test_island_lattice():
    """A second two-phase lattice: rotated triangular, another period, a round island.
    Before: |r| 0.018 (smoothest latent) on this very image."""
    r, found = _smoothest_r(island_lattice(seed=11, size=160))
    assert r >= 0.8, found


def test_island_lattice_truth():
    """The generator's truth: η ≈ +1 in the island, −1 outside; the second atom sits
    ± shift·a off its honeycomb position at right angles to the first lattice vector."""
    s = island_lattice(seed=2, size=96, noise=0.0)
    eta = s["order_parameter"]
    assert eta.max() > 0.99 and eta.min() < -0.99
    atoms = s["atoms"]
    assert set(np.unique(atoms["sublattice"])) == {0, 1}
    assert np.allclose(atoms["order"][atoms["sublattice"] == 0],
                       eta[atoms["y"][atoms["sublattice"] == 0].round().astype(int),
                           atoms["x"][atoms["sublattice"] == 0].round().astype(int)], atol=0.15)
    assert s["data"].shape == (1, 96, 96) and s["data"].max() == pytest.approx(1.0, abs=0.2)
    assert np.array_equal(island_lattice(seed=2, size=96)["data"], island_lattice(seed=2, size=96)["data"])


def test_random_training_positions_cover_every_lattice_phase():
    """Grid windows at a step dividing the period see few lattice phases; random positions see all."""
    sites = grid_sites((1, 100, 100), 24, step=4)
    phases = lambda t: len(set(zip(t["y"].astype(int) % 12, t["x"].astype(int) % 12)))  # noqa: E731
    rnd = random_sites_like(sites, 2000, seed=1)
    assert phases(sites) == 9 and phases(rnd) == 144
    assert rnd["y"].between(sites["y"].min(), sites["y"].max()).all()
    assert rnd["x"].between(sites["x"].min(), sites["x"].max()).all()
    assert len(random_sites_like(sites, seed=1)) == len(sites)


def test_warmup_then_attempts_until_smooth():
    """The warm-up trains with the content latents disconnected (restored after it); models are
    trained (new seeds) until one scores ≥ ``good``, and the best-scored one is returned."""
    import torch

    from napari_rvae.vae import build_model
    from napari_rvae.vae.shiftvae import shift_vae_attempts, shift_vae_config, steepen_decoder

    windows = np.random.default_rng(0).random((80, 8, 8)).astype(np.float32)
    config = shift_vae_config(8, latent=2, epochs=2, decoder_widths=(8, 8))
    plain = build_model(config, seed=0)
    steep = build_model(config, seed=0)
    steepen_decoder(steep, 0.8)
    assert torch.allclose(steep.decoder.mlp.weights[0][:, :2], plain.decoder.mlp.weights[0][:, :2] * 0.8 * 3.5)
    built = []

    def build(attempt):
        built.append(attempt)
        return build_model(config, seed=attempt)

    scores = {0: 0.2, 1: 0.4, 2: 0.3}  # none reaches good = 0.5: all three run, the best (1) is kept

    def score(model):
        return scores[built[-1]]

    steps = shift_vae_attempts(build, windows, 2, score=score, attempts=3, good=0.5, warmup_epochs=2,
                               threads=1, batch_size=40)
    items = []
    while True:
        try:
            items.append(next(steps))
        except StopIteration as done:
            model = done.value
            break
    epochs = [i[1] for i in items if i[0] == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, 13))
    assert [e.get("phase") for e in epochs[:4]] == ["warmup", "warmup", None, None]
    assert [i[1:] for i in items if i[0] == "attempt"] == [(0, 0.2), (1, 0.4), (2, 0.3)]
    assert model.attempts == [0.2, 0.4, 0.3] and built == [0, 1, 2]
    assert len(model.history) == 4 and model.decoder.mlp.weights[0][:, 2:].abs().sum() > 0
    # a smooth first model ends the attempts
    scores[0] = 0.9
    built.clear()
    steps = shift_vae_attempts(build, windows, 1, score=score, good=0.5, warmup_epochs=1, threads=1, batch_size=40)
    assert sum(1 for i in steps if i[0] == "attempt") == 1 and built == [0]
