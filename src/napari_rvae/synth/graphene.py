"""graphene-movie: HAADF-like Si-doped graphene under the electron beam, with exact ground truth.

A honeycomb lattice (two sublattices A/B, C–C spacing ``cc`` pixels) with an
optional rotated grain, ~1 % substitutional Si (Z-contrast (14/6)^1.7 × C) that
hop to neighbouring sites between frames, holes that nucleate and lose edge
atoms every frame, and Stone–Wales defects (one bond rotated by 90°, giving
5-7-7-5 rings) appearing over time. Atoms are probe-blurred Gaussian spots;
Poisson noise at ``dose``, Gaussian read noise, scan-line jitter and a slow
drift complete the picture.

The structure is an explicit graph (atoms + bonds), so ring sizes around each
atom are exact faces of the planar bond graph (see ``_graph``), never image
analysis. See ``docs/samples.md`` for the output keys.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._graph import ring_table
from ._sheet import _add_stone_wales, _build_sheet, _grow_holes, _hop_si, _nucleate_hole
from ._util import check_positive_int, check_range, params_json, rngs, units_array
from .render import add_noise, render_spots, scan_jitter

SI_CONTRAST = (14.0 / 6.0) ** 1.7  # HAADF intensity ~ Z^1.7
CC_ANGSTROM = 1.42

ATOM_DTYPE = np.dtype(
    [
        ("frame", "i4"), ("id", "i4"), ("y", "f8"), ("x", "f8"), ("element", "i1"), ("class", "i1"),
        ("sublattice", "i1"), ("grain", "i1"), ("track_id", "i4"), ("defect", "i4"),
        ("n5", "i1"), ("n6", "i1"), ("n7", "i1"), ("n8", "i1"),
    ]
)
BOND_DTYPE = np.dtype([("frame", "i4"), ("i", "i4"), ("j", "i4")])
RING_DTYPE = np.dtype([("frame", "i4"), ("y", "f8"), ("x", "f8"), ("size", "i1")])
SW_DTYPE = np.dtype([("id", "i4"), ("frame", "i4"), ("atom_i", "i4"), ("atom_j", "i4"), ("y", "f8"), ("x", "f8")])




def _masks(positions: np.ndarray, is_si: np.ndarray, size: int, cc: float, label_radius: float, pad: int):
    """Per-class labels (1 background, 2 C, 3 Si) and the hole mask (farther than 1.4·cc from any atom)."""
    grid = size + 2 * pad
    rc = np.rint(positions).astype(np.int64) + pad
    ok = np.all((rc >= 0) & (rc < grid), axis=1)
    rc, cls = rc[ok], np.where(is_si[ok], 3, 2).astype(np.uint8)
    seeds = np.ones((grid, grid), dtype=bool)
    seeds[rc[:, 0], rc[:, 1]] = False
    cls_img = np.ones((grid, grid), dtype=np.uint8)
    cls_img[rc[:, 0], rc[:, 1]] = cls
    dist, (iy, ix) = ndimage.distance_transform_edt(seeds, return_indices=True)
    labels = np.where(dist <= label_radius, cls_img[iy, ix], 1).astype(np.uint8)
    holes = dist > 1.4 * cc
    sl = slice(pad, pad + size)
    return labels[sl, sl], holes[sl, sl]


def graphene_movie(
    seed: int = 0,
    frames: int = 20,
    size: int = 512,
    *,
    cc: float = 12.0,
    probe_sigma: float | None = None,
    lattice_angle: float = 0.15,
    si_fraction: float = 0.01,
    si_hop: float = 0.3,
    n_holes: int = 3,
    hole_growth: float = 0.2,
    n_stone_wales: int = 4,
    grain: bool = True,
    grain_angle: float = 0.3,
    grain_radius: float = 0.25,
    dose: float = 40.0,
    read_noise: float = 0.03,
    jitter: float = 0.3,
    drift: tuple[float, float] = (3.0, 5.0),
    noise: bool = True,
) -> dict:
    """Generate the graphene movie and its ground truth.

    Parameters
    ----------
    seed : int
        Random seed; the same seed gives the same movie and truth.
    frames, size : int
        Movie shape ``(frames, size, size)``.
    cc : float
        C–C bond length in pixels (pixel size = 0.142 nm / ``cc``).
    probe_sigma : float, optional
        Gaussian probe width in pixels (default ``0.25 * cc``).
    lattice_angle : float
        Lattice orientation (radians).
    si_fraction : float
        Fraction of atoms in the field of view replaced by Si.
    si_hop : float
        Probability per frame that a Si swaps with a neighbouring C.
    n_holes, hole_growth : int, float
        Number of holes (nucleating in the first half of the movie) and the
        probability per frame that each hole-edge C atom is sputtered.
    n_stone_wales : int
        Stone–Wales defects, appearing at random frames ≥ 1.
    grain, grain_angle, grain_radius : bool, float, float
        A rotated grain (misorientation in radians, radius as a fraction of ``size``).
    dose, read_noise, jitter : float
        Counts per unit intensity (a C peak is 1), Gaussian read noise, scan-line jitter (pixels).
    drift : (dy, dx)
        Total linear drift over the movie (pixels).
    noise : bool
        ``False`` renders the noiseless movie (same ground truth).

    Returns
    -------
    dict
        ``data`` (T, Y, X) float32, ``scale``, ``units``, ``atoms``, ``bonds``,
        ``rings``, ``stone_wales``, ``labels`` (T, Y, X) uint8, ``hole_masks``
        (T, Y, X) bool, ``params`` (JSON). See ``docs/samples.md``.
    """
    frames = check_positive_int("frames", frames)
    size = check_positive_int("size", size, 32)
    cc = check_range("cc", cc, 4.0, 100.0)
    sigma = 0.25 * cc if probe_sigma is None else check_range("probe_sigma", probe_sigma, 0.3, cc)
    si_fraction = check_range("si_fraction", si_fraction, 0.0, 0.2)
    si_hop = check_range("si_hop", si_hop, 0.0, 1.0)
    hole_growth = check_range("hole_growth", hole_growth, 0.0, 1.0)
    n_holes = check_positive_int("n_holes", n_holes, 0)
    n_stone_wales = check_positive_int("n_stone_wales", n_stone_wales, 0)
    grain_radius = check_range("grain_radius", grain_radius, 0.02, 0.45)
    dose = check_range("dose", dose, 1e-3, 1e9)
    drift = np.asarray(drift, dtype=np.float64).reshape(2)
    params = dict(seed=seed, frames=frames, size=size, cc=cc, probe_sigma=sigma, lattice_angle=lattice_angle,
                  si_fraction=si_fraction, si_hop=si_hop, n_holes=n_holes, hole_growth=hole_growth,
                  n_stone_wales=n_stone_wales, grain=bool(grain), grain_angle=grain_angle,
                  grain_radius=grain_radius, dose=dose, read_noise=read_noise, jitter=jitter,
                  drift=drift, noise=bool(noise))
    rng, rng_noise = rngs(seed)

    margin = 3 * cc + float(np.abs(drift).max()) + 2
    sheet = _build_sheet(rng, size, cc, lattice_angle, grain, grain_angle, grain_radius, margin)
    edge_gap = 4 * cc
    interior = np.all((sheet.pos > edge_gap) & (sheet.pos < size - edge_gap), axis=1)
    in_view = np.all((sheet.pos >= 0) & (sheet.pos <= size - 1), axis=1)
    pool = np.flatnonzero(in_view & sheet.alive & (sheet.degree() == 3))
    n_si = int(round(si_fraction * in_view.sum()))
    chosen = rng.choice(pool, size=min(n_si, len(pool)), replace=False) if n_si else np.zeros(0, int)
    sheet.si[chosen] = True
    sheet.track[chosen] = np.arange(len(chosen), dtype=np.int32)
    hole_frames = np.sort(rng.integers(0, max(1, frames // 2), n_holes))
    sw_frames = np.sort(rng.integers(1, max(2, frames), n_stone_wales))
    t_frac = np.arange(frames) / max(frames - 1, 1)
    wobble = 0.4 * np.stack([np.sin(2 * np.pi * t_frac * 1.3), np.cos(2 * np.pi * t_frac * 0.7) - 1], axis=1)
    drifts = t_frac[:, None] * drift[None, :] + wobble

    atoms, bonds, rings_out, sws = [], [], [], []
    data = np.empty((frames, size, size), dtype=np.float32)
    labels = np.empty((frames, size, size), dtype=np.uint8)
    holes = np.empty((frames, size, size), dtype=bool)
    pending_sw = 0
    for t in range(frames):
        if t > 0:
            _hop_si(rng, sheet, si_hop)
            _grow_holes(rng, sheet, hole_growth)
        for _ in range(int((hole_frames == t).sum())):
            _nucleate_hole(rng, sheet, interior)
        counts, ring_list = ring_table(sheet.pos, sheet.edges())
        pending_sw += int((sw_frames == t).sum())
        for _ in range(pending_sw):  # a defect that finds no pristine site waits for a later frame
            pair = _add_stone_wales(rng, sheet, counts, interior, len(sws))
            if pair is not None:
                pending_sw -= 1
                mid = 0.5 * (sheet.pos[pair[0]] + sheet.pos[pair[1]]) + drifts[t]
                sws.append((len(sws), t, pair[0], pair[1], mid[0], mid[1]))
                counts, ring_list = ring_table(sheet.pos, sheet.edges())
        pos_t = sheet.pos + drifts[t]
        alive = sheet.alive
        vis = alive & np.all((pos_t >= 0) & (pos_t <= size - 1), axis=1)
        idx = np.flatnonzero(vis)
        rows = np.zeros(len(idx), dtype=ATOM_DTYPE)
        rows["frame"], rows["id"] = t, idx
        rows["y"], rows["x"] = pos_t[idx, 0], pos_t[idx, 1]
        rows["element"] = np.where(sheet.si[idx], 14, 6)
        rows["class"] = sheet.si[idx].astype(np.int8)
        rows["sublattice"], rows["grain"] = sheet.sub[idx], sheet.grain[idx]
        rows["track_id"], rows["defect"] = sheet.track[idx], sheet.defect[idx]
        for k, name in enumerate(("n5", "n6", "n7", "n8")):
            rows[name] = counts[idx, k]
        atoms.append(rows)
        e = sheet.edges()
        e = e[vis[e[:, 0]] & vis[e[:, 1]]]
        b = np.zeros(len(e), dtype=BOND_DTYPE)
        b["frame"], b["i"], b["j"] = t, e[:, 0], e[:, 1]
        bonds.append(b)
        if ring_list:
            rsize = np.array([len(r) for r in ring_list])
            starts = np.concatenate([[0], np.cumsum(rsize)[:-1]])
            centres = np.add.reduceat(pos_t[np.concatenate(ring_list)], starts, axis=0) / rsize[:, None]
            ok = np.all((centres >= 0) & (centres <= size - 1), axis=1)
            r = np.zeros(int(ok.sum()), dtype=RING_DTYPE)
            r["frame"], r["y"], r["x"], r["size"] = t, centres[ok, 0], centres[ok, 1], rsize[ok]
            rings_out.append(r)
        amps = np.where(sheet.si[alive], SI_CONTRAST, 1.0)
        image = render_spots((size, size), pos_t[alive], amps, sigma) + 0.02
        if noise:
            image = add_noise(image, rng_noise, dose=dose, read_noise=read_noise)
            image = scan_jitter(image, rng_noise, jitter)
        data[t] = image
        labels[t], holes[t] = _masks(pos_t[alive], sheet.si[alive], size, cc, 0.3 * cc, int(2 * cc))

    pixel_nm = CC_ANGSTROM / 10.0 / cc
    return {
        "data": data,
        "scale": np.array([1.0, pixel_nm, pixel_nm]),
        "units": units_array("", "nm", "nm"),
        "atoms": np.concatenate(atoms),
        "bonds": np.concatenate(bonds),
        "rings": np.concatenate(rings_out) if rings_out else np.zeros(0, RING_DTYPE),
        "stone_wales": np.array(sws, dtype=SW_DTYPE),
        "labels": labels,
        "hole_masks": holes,
        "drift": drifts.astype(np.float64),
        "params": params_json(params),
    }
