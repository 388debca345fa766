"""Benchmark of the batched sub-pixel refinement against a per-atom ``curve_fit`` loop.

Both fit the same model (round 2D Gaussian + constant) to the same boxes from
the same starting values; the ratio is measured in one run (DESIGN §6).
"""

from __future__ import annotations

import time

import numpy as np

# AtomAI 0.8.1's Gaussian refinement on this machine kind (shared/bench/README.md)
ATOMAI_MS_PER_ATOM = 3.6


def _gaussian_2d(coords, amplitude, y0, x0, sigma, background):
    y, x = coords
    return background + amplitude * np.exp(-((y - y0) ** 2 + (x - x0) ** 2) / (2.0 * sigma * sigma))


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(((a - b) ** 2).sum(1).mean())) if len(a) else float("nan")


def refinement_benchmark(
    shape=(512, 512),
    bond: float = 8.0,
    *,
    n_reference: int = 200,
    repeats: int = 5,
    seed: int = 0,
    dose: float = 200.0,
) -> dict:
    """Atoms per second and accuracy: batched fit vs per-atom ``scipy.optimize.curve_fit``.

    A noisy graphene-like frame (:func:`napari_rvae.detect.scenes.graphene_scene`)
    is searched by peak finding. The same boxes from the same starting values
    are fitted by :func:`~napari_rvae.detect.refine.fit_gaussians` (all atoms at
    once) and, for the first ``n_reference`` atoms with boxes inside the frame,
    one at a time by ``curve_fit``. The two alternate in ``repeats`` rounds and
    the per-round ratios' median is reported. End to end
    (:func:`~napari_rvae.detect.refine.refine_positions`: boxes, start, fit) is
    timed too.

    Returns
    -------
    result : dict
        ``n_atoms``, ``half_box`` (pixels), ``ours_atoms_per_s`` (fit only),
        ``ours_end_to_end_atoms_per_s``, ``curve_fit_atoms_per_s``, ``speedup``
        (per atom, same boxes, same run), ``speedup_end_to_end``,
        ``speedup_vs_atomai`` (end to end against AtomAI's 3.6 ms/atom reference),
        ``rmse_start_px``, ``rmse_ours_px``, ``rmse_curve_fit_px`` (on the
        reference atoms), ``rmse_ours_reference_atoms_px``,
        ``max_disagreement_px`` (ours vs curve_fit on converged atoms).
    """
    from scipy.optimize import curve_fit
    from scipy.spatial import cKDTree

    from napari_rvae.detect.atoms import atoms_from_image
    from napari_rvae.detect.refine import default_half_box, extract_boxes, fit_gaussians, initial_guess, refine_positions
    from napari_rvae.detect.scenes import graphene_scene

    scene = graphene_scene(shape, bond, seed=seed, dose=dose)
    found = atoms_from_image(scene["image"])[["y", "x"]].to_numpy()
    dist, index = cKDTree(scene["yx"]).query(found)
    matched = dist < 2.0
    start, truth = found[matched], scene["yx"][index[matched]]
    half_box = default_half_box(start)

    boxes, weights, centres = extract_boxes(scene["image"], start, half_box)
    init = initial_guess(boxes, weights)
    inside = np.flatnonzero(weights.reshape(len(boxes), -1).min(1) == 1)[: int(n_reference)]
    offs = np.arange(-half_box, half_box + 1, dtype=np.float64)
    yy, xx = np.meshgrid(offs, offs, indexing="ij")
    coords = (yy.ravel(), xx.ravel())
    reference = np.empty((len(inside), 2))
    converged = np.ones(len(inside), dtype=bool)

    # alternate the two in rounds (the machine is shared): ours on all atoms, then a slice of the reference
    rounds = max(1, int(repeats))
    slices = np.array_split(np.arange(len(inside)), rounds)
    fit_rates, end_rates, ref_rates = [], [], []
    for part in slices:
        t0 = time.perf_counter()
        params, ok = fit_gaussians(boxes, weights, init)
        fit_rates.append(len(boxes) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        fit = refine_positions(scene["image"], start, half_box=half_box, neighbours=False)  # same model as curve_fit
        end_rates.append(len(start) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for row in part:
            k = inside[row]
            try:
                p, _ = curve_fit(_gaussian_2d, coords, boxes[k].ravel(), p0=init[k], maxfev=2000)
            except RuntimeError:  # no convergence: keep the start like our fit does
                p, converged[row] = init[k], False
            reference[row] = centres[k] + p[1:3]
        ref_rates.append(len(part) / max(time.perf_counter() - t0, 1e-12))
    ours = np.stack([fit["y"], fit["x"]], axis=1)
    ratio = np.median(np.asarray(fit_rates) / np.asarray(ref_rates))
    ref_rate = float(np.median(ref_rates))

    agree = converged & fit["refined"][inside]
    return {
        "n_atoms": int(len(start)),
        "n_reference": int(len(inside)),
        "half_box": int(half_box),
        "ours_atoms_per_s": round(float(np.median(fit_rates)), 1),
        "ours_end_to_end_atoms_per_s": round(float(np.median(end_rates)), 1),
        "curve_fit_atoms_per_s": round(ref_rate, 1),
        "speedup": round(float(ratio), 1),
        "speedup_end_to_end": round(float(np.median(np.asarray(end_rates) / np.asarray(ref_rates))), 1),
        "ours_us_per_atom": round(1e6 / float(np.median(fit_rates)), 2),
        "curve_fit_us_per_atom": round(1e6 / ref_rate, 1),
        "speedup_vs_atomai": round(float(np.median(end_rates)) * ATOMAI_MS_PER_ATOM / 1e3, 1),
        "rmse_start_px": round(_rmse(start, truth), 4),
        "rmse_ours_px": round(_rmse(ours, truth), 4),
        "rmse_ours_reference_atoms_px": round(_rmse(ours[inside], truth[inside]), 4),
        "rmse_curve_fit_px": round(_rmse(reference, truth[inside]), 4),
        "max_disagreement_px": round(float(np.abs(ours[inside][agree] - reference[agree]).max(initial=0.0)), 5),
    }
