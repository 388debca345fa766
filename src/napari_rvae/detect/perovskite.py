"""Perovskite A/B sublattices by geometry, unit cells and the B-site displacement (polarisation).

In a [001] projection of a perovskite ABO3 the A and B columns form two
interpenetrating square lattices: every column's four nearest neighbours are
columns of the other kind, at the A–B spacing ``d`` (half a cell diagonal). So
the graph of nearest-neighbour bonds is bipartite and a breadth-first 2-colouring
splits it into the two sublattices exactly, whatever the brightness of single
columns, which changes across interfaces, thickness and scan gradients. Only the
choice of which colour is A needs brightness, and it is made once per connected
region from the two sublattices' median intensities (A brighter in HAADF; say
otherwise with ``a_site="dark"``).

Each B column's four nearest A columns define its unit cell; the displacement of
the B column from the cell centre (pixels, ``B − centre``) is the usual HAADF
proxy of the local polarisation (B cations move along P; the sign convention is
the user's to choose). :func:`cell_sites` turns the cells into sites of kind
``"cell"`` at their centres, so windows cut there show each B column's
off-centring as a shift within the window (paper 003's workflow).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..io.sites import make_sites
from ._checks import nearest_neighbour_distance, positions_of

SUBLATTICES = ("A", "B")


def _bonds(yx: np.ndarray, spacing: float) -> list[np.ndarray]:
    """Each site's neighbours within 25 % of the A–B spacing."""
    tree = cKDTree(yx)
    lists = tree.query_ball_point(yx, 1.25 * spacing)
    inner = tree.query_ball_point(yx, 0.75 * spacing)
    return [np.setdiff1d(np.asarray(outer, dtype=np.int64), np.asarray(near, dtype=np.int64))
            for outer, near in zip(lists, inner)]


def _two_colour(neighbours: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Breadth-first 2-colouring: colour (0/1, −1 = isolated) and connected-component id per site.
    A conflicting bond (odd ring: a defect or a wrong bond) keeps the first colour reached."""
    n = len(neighbours)
    colour = np.full(n, -1, dtype=np.int64)
    component = np.full(n, -1, dtype=np.int64)
    label = 0
    for start in range(n):
        if colour[start] >= 0 or len(neighbours[start]) == 0:
            continue
        colour[start], component[start] = 0, label
        queue = deque([start])
        while queue:
            i = queue.popleft()
            for j in neighbours[i]:
                if colour[j] < 0:
                    colour[j], component[j] = 1 - colour[i], label
                    queue.append(j)
        label += 1
    return colour, component


def assign_sublattices(sites: pd.DataFrame, *, spacing: float | None = None, a_site: str = "bright",
                       min_contrast: float = 0.5) -> pd.DataFrame:
    """Add a ``sublattice`` column (``"A"``, ``"B"`` or ``""`` for isolated sites) to atom sites.

    Parameters
    ----------
    sites : DataFrame
        Atom sites (``frame, y, x``, and ``intensity`` to tell A from B).
    spacing : float, optional
        A–B nearest-neighbour distance, pixels (default: each frame's median).
    a_site : {"bright", "dark"}
        Whether A columns are the brighter sublattice (HAADF/ADF: heavier A cations) or the
        dimmer one.
    min_contrast : float
        In each connected region the two geometric classes' median intensities must differ
        by this many (pooled) median absolute deviations; otherwise the region holds one
        sublattice only (e.g. only the A columns were found) and stays unassigned. When most
        sites stay unassigned a ``ValueError`` says so.

    Returns
    -------
    DataFrame
        A copy with ``sublattice`` and ``region`` (connected lattice region id per frame).
    """
    if a_site not in ("bright", "dark"):
        raise ValueError(f"a_site: expected 'bright' or 'dark', got {a_site!r}")
    frames, yx = positions_of(sites)
    if "intensity" not in sites or not np.isfinite(sites["intensity"].to_numpy(dtype=float)).any():
        raise ValueError("sites: an 'intensity' column is needed to tell the A from the B sublattice")
    intensity = sites["intensity"].to_numpy(dtype=np.float64)
    out = sites.copy()
    label = np.full(len(out), "", dtype=object)
    region = np.full(len(out), -1, dtype=np.int64)
    for t in np.unique(frames):
        rows = np.flatnonzero(frames == t)
        if len(rows) < 4:
            continue
        d = spacing if spacing is not None else nearest_neighbour_distance(yx[rows])
        colour, component = _two_colour(_bonds(yx[rows], d))
        for c in np.unique(component[component >= 0]):
            members = component == c
            i0, i1 = intensity[rows[members & (colour == 0)]], intensity[rows[members & (colour == 1)]]
            if len(i0) < 2 or len(i1) < 2:
                continue
            spread = np.median(np.abs(np.r_[i0 - np.median(i0), i1 - np.median(i1)])) + 1e-12
            if abs(np.median(i0) - np.median(i1)) < min_contrast * spread:
                continue  # one sublattice only here (or no contrast between them): left unassigned
            brighter = 0 if np.median(i0) > np.median(i1) else 1
            a_colour = brighter if a_site == "bright" else 1 - brighter
            label[rows[members & (colour == a_colour)]] = "A"
            label[rows[members & (colour == 1 - a_colour)]] = "B"
            region[rows[members]] = c
    if len(label) and np.mean(label == "") > 0.5:
        raise ValueError("most sites could not be split into A and B sublattices: the two classes found by "
                         "geometry are equally bright, so the detection probably holds only one of A or B (the B "
                         "columns too faint); detect again with a smaller --spacing (the A–B distance) or --threshold")
    out["sublattice"] = label
    out["region"] = region
    return out


def unit_cells(sites: pd.DataFrame) -> pd.DataFrame:
    """The unit cell of every B site: the centre of its four nearest A sites and the displacement.

    Parameters
    ----------
    sites : DataFrame
        Atom sites with a ``sublattice`` column (:func:`assign_sublattices`).

    Returns
    -------
    DataFrame
        One row per B site with four A neighbours around it (one on each side):
        ``frame``, ``row`` (index of the B site in ``sites``), ``y, x`` (cell centre, pixels),
        ``disp_y, disp_x`` (B − centre, pixels), ``disp`` (length) and ``disp_angle``
        (radians, counter-clockwise from +x with y up, as the ferroic sample's polarisation).
    """
    if "sublattice" not in sites:
        raise ValueError("sites: no 'sublattice' column; run assign_sublattices first")
    frames, yx = positions_of(sites)
    is_a, is_b = (sites["sublattice"] == "A").to_numpy(), (sites["sublattice"] == "B").to_numpy()
    rows_out = []
    for t in np.unique(frames):
        a_rows = np.flatnonzero(is_a & (frames == t))
        b_rows = np.flatnonzero(is_b & (frames == t))
        if len(a_rows) < 4 or len(b_rows) == 0:
            continue
        dist, idx = cKDTree(yx[a_rows]).query(yx[b_rows], k=4)
        corners = yx[a_rows][idx]  # (nB, 4, 2)
        centre = corners.mean(1)
        # a proper cell: the four corners on four sides of their centre, one cell's size (not a
        # border B with a far A standing in for a missing corner)
        angles = np.sort(np.arctan2(*(corners - centre[:, None, :]).transpose(2, 0, 1)), axis=1)
        gaps = np.diff(np.c_[angles, angles[:, :1] + 2 * np.pi], axis=1)
        side = np.hypot(*(corners - centre[:, None, :]).transpose(2, 0, 1))
        ok = (np.abs(gaps - np.pi / 2).max(1) < 0.35) & (side.max(1) < 1.25 * side.min(1)) & \
            (dist.max(1) < 2.0 * dist.min(1))
        disp = yx[b_rows] - centre
        for k in np.flatnonzero(ok):
            rows_out.append((t, b_rows[k], centre[k, 0], centre[k, 1], disp[k, 0], disp[k, 1]))
    table = pd.DataFrame(rows_out, columns=["frame", "row", "y", "x", "disp_y", "disp_x"])
    table["disp"] = np.hypot(table["disp_y"], table["disp_x"])
    table["disp_angle"] = np.arctan2(-table["disp_y"], table["disp_x"])
    return table


def cell_sites(sites: pd.DataFrame) -> pd.DataFrame:
    """Sites of kind ``"cell"`` at the unit-cell centres, with the displacement columns, for windows
    cut around cells; ``class`` is 0."""
    cells = unit_cells(sites)
    return make_sites(cells["frame"], cells["y"], cells["x"], "cell", 0, np.nan,
                      disp_y=cells["disp_y"].to_numpy(), disp_x=cells["disp_x"].to_numpy(),
                      disp=cells["disp"].to_numpy(), disp_angle=cells["disp_angle"].to_numpy())


def with_cells(sites: pd.DataFrame, *, spacing: float | None = None, a_site: str = "bright") -> pd.DataFrame:
    """Atom sites with ``sublattice`` (and, on B sites, ``disp_y, disp_x, disp, disp_angle``), followed by
    the ``"cell"`` sites: one table for the perovskite workflow."""
    atoms = assign_sublattices(sites, spacing=spacing, a_site=a_site)
    cells = unit_cells(atoms)
    for column in ("disp_y", "disp_x", "disp", "disp_angle"):
        atoms[column] = np.nan
        atoms.loc[atoms.index[cells["row"].to_numpy()], column] = cells[column].to_numpy()
    return pd.concat([atoms, cell_sites(atoms)], ignore_index=True)


def displacement_vectors(sites: pd.DataFrame, scale: float = 1.0) -> np.ndarray:
    """``(N, 2, 3)`` array for a napari Vectors layer: one arrow per B site from the cell centre along
    its displacement (``[[frame, y, x], [0, dy, dx]]``), lengthened ``scale`` times."""
    b = sites[(sites.get("kind", "atom") == "atom") & np.isfinite(sites.get("disp_y", np.nan))] \
        if "disp_y" in sites else sites.iloc[:0]
    start = np.column_stack([b["frame"], b["y"] - b["disp_y"], b["x"] - b["disp_x"]]).astype(np.float64)
    direction = np.column_stack([np.zeros(len(b)), scale * b["disp_y"], scale * b["disp_x"]])
    return np.stack([start, direction], axis=1)
