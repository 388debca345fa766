"""Sub-pixel refinement: one batched 2D Gaussian fit over all atoms at once.

Each atom gets a ``(b, b)`` box (``b = 2 h + 1``) of the raw image around its
rounded position (moved inwards at the frame border). The model per box is

    m(y, x) = B + A · exp(-((y - y0)² + (x - x0)²) / (2 s²))

with five parameters ``(A, y0, x0, s, B)`` fitted by Levenberg–Marquardt, all
boxes advancing together, each atom with its own damping factor. For fully
valid boxes every Jacobian column is separable in y and x, so the normal
equations come from 1D Gram matrices and one small contraction per box
(:func:`_separable_state`), laid out atoms-last and solved by a vectorised
5×5 Cholesky. Boxes with NaN pixels use a weighted (general) path. A fit that
runs away (centre leaves the box, width outside ``[0.3, 2 h]`` pixels,
non-positive amplitude) keeps the starting position.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._checks import as_movie, nearest_neighbour_distance, positions_of

PARAMETERS = ("amplitude", "y", "x", "sigma", "background")


def default_half_box(yx: np.ndarray) -> int:
    """¼ of the median nearest-neighbour distance (pixels), at least 2."""
    nn = nearest_neighbour_distance(yx)
    return max(2, int(round(0.25 * nn))) if np.isfinite(nn) else 3


def extract_boxes(image: np.ndarray, yx: np.ndarray, half_box: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut ``(N, b, b)`` boxes around the rounded positions.

    Near the border a box is moved inwards so that it stays inside the frame
    (the atom is then off-centre in its box); only frames smaller than a box
    get pixels outside, with weight 0.

    Returns
    -------
    boxes : (N, b, b) float64 (non-finite pixels set to 0)
    weights : (N, b, b) float64, 1 for finite pixels inside the frame else 0
    centres : (N, 2) int64 box centres (pixels)
    """
    h = int(half_box)
    image = np.asarray(image)
    centres = np.rint(np.asarray(yx, dtype=np.float64).reshape(-1, 2)).astype(np.int64)
    for axis in (0, 1):
        size = image.shape[axis]
        low, high = (h, size - 1 - h) if size > 2 * h else (0, size - 1)
        centres[:, axis] = np.clip(centres[:, axis], low, high)
    offs = np.arange(-h, h + 1)
    if min(image.shape) > 2 * h:  # every box lies inside the frame
        source, rows, cols = image, centres[:, 0, None] + offs[None], centres[:, 1, None] + offs[None]
    else:  # a frame smaller than a box: the pixels outside it are NaN (weight 0)
        source = np.pad(image.astype(np.float64), h, mode="constant", constant_values=np.nan)
        rows, cols = centres[:, 0, None] + h + offs[None], centres[:, 1, None] + h + offs[None]
    boxes = source[rows[:, :, None], cols[:, None, :]].astype(np.float64)
    weights = np.isfinite(boxes).astype(np.float64)
    return np.nan_to_num(boxes, nan=0.0), weights, centres


def initial_guess(boxes: np.ndarray, weights: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Moment-based start ``(A, y0, x0, s, B)`` per box, coordinates relative to the box centre."""
    n, b, _ = boxes.shape
    h = (b - 1) // 2
    if n == 0:
        return np.zeros((0, 5))
    big = np.where(weights > 0, boxes, np.inf)
    background = big.reshape(n, -1).min(1)
    background = np.where(np.isfinite(background), background, 0.0)
    top = np.where(weights > 0, boxes, -np.inf).reshape(n, -1).max(1)
    top = np.where(np.isfinite(top), top, 1.0)
    amplitude = np.maximum(top - background, 1e-12)
    mass = np.clip(boxes - background[:, None, None], 0, None) * weights
    total = np.maximum(mass.sum((1, 2)), 1e-12)
    offs = np.arange(-h, h + 1, dtype=np.float64)
    y0 = (mass.sum(2) * offs).sum(1) / total
    x0 = (mass.sum(1) * offs).sum(1) / total
    if sigma is None:
        r2 = (offs[:, None] - y0[:, None, None]) ** 2 + (offs[None, :] - x0[:, None, None]) ** 2
        s = np.sqrt(np.clip((mass * r2).sum((1, 2)) / total / 2.0, 0.25, None))
        s = np.clip(s, 0.5, max(1.0, h))
    else:
        s = np.full(n, float(sigma))
    return np.stack([amplitude, y0, x0, s, background], axis=1)


def _model_and_jacobian(p: np.ndarray, dy: np.ndarray, dx: np.ndarray):
    """Model (N, P) and Jacobian (N, P, 5) for flattened box coordinates ``dy, dx`` (P,)."""
    A, y0, x0, s, B = (p[:, i : i + 1] for i in range(5))
    ry = dy[None] - y0
    rx = dx[None] - x0
    r2 = ry * ry + rx * rx
    inv_s2 = 1.0 / (s * s)
    g = np.exp(-0.5 * r2 * inv_s2)
    Ag = A * g
    model = B + Ag
    jac = np.empty(model.shape + (5,))
    jac[..., 0] = g
    jac[..., 1] = Ag * ry * inv_s2
    jac[..., 2] = Ag * rx * inv_s2
    jac[..., 3] = Ag * r2 * inv_s2 / s
    jac[..., 4] = 1.0
    return model, jac


# Columns of the Jacobian as sums of separable products a_i(y) ⊗ b_j(x) with
# a = (g, g·r/s², g·r²/s³, 1) along each axis; unscaled (the amplitude factor A
# of columns y0, x0, s is applied afterwards). (row i, column j) per term.
_TERMS = (((0, 0),), ((1, 0),), ((0, 1),), ((2, 0), (0, 2)), ((3, 3),))


def _axis_gram(centre: np.ndarray, s: np.ndarray, offs: np.ndarray):
    """Basis (3, b, N) of one axis and its Gram matrix (4, 4, N) including the constant."""
    r = offs - centre  # (b, N)
    inv_s2 = 1.0 / (s * s)
    g = np.exp(-0.5 * r * r * inv_s2)
    g1 = g * r * inv_s2
    basis = np.stack([g, g1, g1 * r / s])
    gram = np.empty((4, 4) + centre.shape)
    gram[:3, :3] = np.einsum("iyn,jyn->ijn", basis, basis)
    gram[3, :3] = gram[:3, 3] = basis.sum(1)
    gram[3, 3] = offs.shape[0]
    return basis, gram


def _separable_state(p: np.ndarray, d: np.ndarray, row_sums: np.ndarray, offs: np.ndarray, sum_d2: np.ndarray):
    """Normal equations and cost of uniformly weighted boxes, vectorised over atoms.

    Layout is atoms-last: ``p`` (5, N), boxes ``d`` (b, b, N). Every Jacobian
    column is a sum of outer products of 1D functions, so each entry of JᵀJ is
    a product of two 1D dot products and JᵀD needs one O(b²) contraction.
    Returns ``jtj`` (5, 5, N), ``grad`` (5, N) and ``cost`` (N,).
    """
    A, B = p[0], p[4]
    fy, my = _axis_gram(p[1], p[3], offs)
    fx, mx = _axis_gram(p[2], p[3], offs)
    t = np.einsum("yxn,jxn->jyn", d, fx)  # (3, b, N): Σ_x D(y, x) b_j(x)
    jtd = np.stack(
        [
            (fy[0] * t[0]).sum(0),
            (fy[1] * t[0]).sum(0),
            (fy[0] * t[1]).sum(0),
            (fy[2] * t[0]).sum(0) + (fy[0] * t[2]).sum(0),
            row_sums,
        ]
    )
    gram = np.empty((5, 5) + A.shape)
    for k, terms_k in enumerate(_TERMS):
        for m in range(k, 5):
            val = 0.0
            for i, j in terms_k:
                for i2, j2 in _TERMS[m]:
                    val = val + my[i, i2] * mx[j, j2]
            gram[k, m] = val
            gram[m, k] = val
    jtm = A * gram[:, 0] + B * gram[:, 4]  # model = A·col0 + B·col4 (unscaled columns)
    model2 = A * A * gram[0, 0] + 2 * A * B * gram[0, 4] + B * B * gram[4, 4]
    cost = model2 - 2.0 * (A * jtd[0] + B * jtd[4]) + sum_d2
    scale = np.stack([np.ones_like(A), A, A, A, np.ones_like(A)])
    return gram * scale[:, None] * scale[None, :], scale * (jtm - jtd), cost


def _cholesky_solve(m: np.ndarray, r: np.ndarray, damping: np.ndarray):
    """Solve ``(m + damping·diag(m)) x = r`` for symmetric positive definite (5, 5, N) systems, atoms last.

    Returns ``x`` (5, N) and ``ok`` (N,); non-positive-definite systems give x = 0.
    """
    k = m.shape[0]
    low = np.zeros_like(m)
    ok = np.ones(m.shape[2:], dtype=bool)
    for j in range(k):
        diag = m[j, j] * (1.0 + damping) + 1e-12 - (low[j, :j] ** 2).sum(0)
        ok &= diag > 0
        low[j, j] = np.sqrt(np.where(diag > 0, diag, 1.0))
        for i in range(j + 1, k):
            low[i, j] = (m[i, j] - (low[i, :j] * low[j, :j]).sum(0)) / low[j, j]
    z = np.empty_like(r)
    for i in range(k):
        z[i] = (r[i] - (low[i, :i] * z[:i]).sum(0)) / low[i, i]
    x = np.empty_like(r)
    for i in reversed(range(k)):
        x[i] = (z[i] - (low[i + 1 :, i] * x[i + 1 :]).sum(0)) / low[i, i]
    return np.where(ok, x, 0.0), ok


def _fit_uniform(boxes: np.ndarray, p: np.ndarray, iterations: int) -> np.ndarray:
    """Levenberg–Marquardt on fully weighted boxes via :func:`_separable_state`."""
    h = (boxes.shape[1] - 1) // 2
    offs = np.arange(-h, h + 1, dtype=np.float64)[:, None]
    d = np.ascontiguousarray(boxes.transpose(1, 2, 0))
    row_sums = d.sum((0, 1))
    sum_d2 = (d * d).sum((0, 1))
    p = np.ascontiguousarray(p.T)
    jtj, grad, cost = _separable_state(p, d, row_sums, offs, sum_d2)
    lam = np.full(p.shape[1], 1e-3)
    for _iteration in range(int(iterations)):
        step, solved = _cholesky_solve(jtj, -grad, lam)
        trial = p + step
        trial[3] = np.clip(np.abs(trial[3]), 0.2, 4.0 * h + 1)
        t_jtj, t_grad, t_cost = _separable_state(trial, d, row_sums, offs, sum_d2)
        better = solved & np.isfinite(t_cost) & (t_cost < cost)
        p = np.where(better, trial, p)
        jtj = np.where(better, t_jtj, jtj)
        grad = np.where(better, t_grad, grad)
        cost = np.where(better, t_cost, cost)
        lam = np.clip(np.where(better, lam * 0.3, lam * 10.0), 1e-9, 1e9)
        # converged: no atom is being moved by more than 0.001 pixel any more
        if np.abs(np.where(better, step[1:3], 0.0)).max() < 1e-3 and (better | (lam > 1e3)).all():
            break
    return p.T


def _solve(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Batched 5×5 solve, falling back to least squares for singular systems."""
    try:
        return np.linalg.solve(lhs, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.stack([np.linalg.lstsq(m, g, rcond=None)[0] for m, g in zip(lhs, rhs)])


def _fit_weighted(boxes, w, p, iterations):
    """Levenberg–Marquardt with per-pixel weights (boxes at the frame edge or with NaN)."""
    n, b, _ = boxes.shape
    h = (b - 1) // 2
    offs = np.arange(-h, h + 1, dtype=np.float64)
    dy = np.repeat(offs, b)
    dx = np.tile(offs, b)
    data = boxes.reshape(n, -1)
    w = w.reshape(n, -1)
    model, jac = _model_and_jacobian(p, dy, dx)
    resid = model - data
    cost = (w * resid * resid).sum(1)
    lam = np.full(n, 1e-3)
    eye = np.eye(5)
    for _ in range(int(iterations)):
        jwt = (jac * w[..., None]).transpose(0, 2, 1)
        jtj = np.matmul(jwt, jac)
        grad = np.matmul(jwt, resid[..., None])[..., 0]
        step = _solve(jtj + (lam[:, None, None] * jtj + 1e-12) * eye, -grad)
        trial = p + step
        trial[:, 3] = np.clip(np.abs(trial[:, 3]), 0.2, 4.0 * h + 1)
        t_model, t_jac = _model_and_jacobian(trial, dy, dx)
        t_resid = t_model - data
        t_cost = (w * t_resid * t_resid).sum(1)
        better = np.isfinite(t_cost) & (t_cost < cost)
        p[better], jac[better] = trial[better], t_jac[better]
        resid[better], cost[better] = t_resid[better], t_cost[better]
        lam = np.clip(np.where(better, lam * 0.3, lam * 10.0), 1e-9, 1e9)
    return p


def fit_gaussians(
    boxes: np.ndarray,
    weights: np.ndarray | None = None,
    init: np.ndarray | None = None,
    *,
    iterations: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit one round 2D Gaussian + constant per box, all boxes at once.

    Parameters
    ----------
    boxes : (N, b, b) array
        Image boxes, atom near the centre pixel.
    weights : (N, b, b) array, optional
        Per-pixel weights (0 = ignore, e.g. outside the frame); default all 1.
        Fully weighted boxes take the fast separable path.
    init : (N, 5) array, optional
        Start ``(A, y0, x0, s, B)``, ``y0, x0`` relative to the centre pixel;
        default :func:`initial_guess`.
    iterations : int
        Levenberg–Marquardt steps (each atom has its own damping).

    Returns
    -------
    params : (N, 5) float64
        ``(amplitude, y0, x0, sigma, background)``; offsets and sigma in pixels.
    ok : (N,) bool
        False where the fit ran away; those rows hold the start values.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 3 or boxes.shape[1] != boxes.shape[2] or boxes.shape[1] % 2 == 0:
        raise ValueError(f"boxes: expected (N, b, b) with odd b, got shape {boxes.shape}")
    n, b, _ = boxes.shape
    h = (b - 1) // 2
    w = np.ones_like(boxes) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != boxes.shape:
        raise ValueError(f"weights: shape {w.shape} does not match boxes {boxes.shape}")
    p = initial_guess(boxes, w) if init is None else np.array(init, dtype=np.float64, copy=True)
    start = p.copy()
    if n == 0:
        return p, np.zeros(0, dtype=bool)
    uniform = (w == 1).all((1, 2))
    if uniform.any():
        p[uniform] = _fit_uniform(boxes[uniform], p[uniform], iterations)
    if (~uniform).any():
        p[~uniform] = _fit_weighted(boxes[~uniform], w[~uniform], p[~uniform], iterations)
    ok = (
        np.isfinite(p).all(1)
        & (np.abs(p[:, 1]) <= h)
        & (np.abs(p[:, 2]) <= h)
        & (p[:, 3] >= 0.3)
        & (p[:, 3] <= 2.0 * h)
        & (p[:, 0] > 0)
        & (w.reshape(n, -1).sum(1) >= 6)
    )
    p = np.where(ok[:, None], p, start)
    return p, ok


def _without_neighbours(frame, centres, params, ok, h):
    """Boxes of ``frame`` with every other fitted atom's Gaussian subtracted (own atom kept).

    Close atoms (graphene at 12 px with a 3 px probe) put their tails into each other's boxes and
    pull the fitted centres towards each other; removing the neighbours' fitted models and fitting
    again removes most of that bias.
    """
    Y, X = frame.shape
    good = np.flatnonzero(ok)
    r = int(np.ceil(3.0 * np.max(params[good, 3])))
    offs = np.arange(-r, r + 1)
    cy, cx = centres[good, 0] + np.rint(params[good, 1]).astype(np.int64), centres[good, 1] + np.rint(params[good, 2]).astype(np.int64)
    y0, x0 = centres[good, 0] + params[good, 1], centres[good, 1] + params[good, 2]
    s2 = 2.0 * params[good, 3] ** 2
    gy = np.exp(-((cy[:, None] + offs) - y0[:, None]) ** 2 / s2[:, None])
    gx = np.exp(-((cx[:, None] + offs) - x0[:, None]) ** 2 / s2[:, None])
    rows = np.clip(cy[:, None] + r + offs, 0, Y + 2 * r - 1)
    cols = np.clip(cx[:, None] + r + offs, 0, X + 2 * r - 1)
    index = rows[:, :, None] * (X + 2 * r) + cols[:, None, :]
    values = params[good, 0, None, None] * gy[:, :, None] * gx[:, None, :]
    model = np.bincount(index.ravel(), weights=values.ravel(), minlength=(Y + 2 * r) * (X + 2 * r))
    model = model.reshape(Y + 2 * r, X + 2 * r)
    boxes, weights, _ = extract_boxes(frame - model[r: r + Y, r: r + X], centres.astype(np.float64), h)
    b = np.arange(-h, h + 1)
    own_y = np.exp(-(b[None] - params[:, 1, None]) ** 2 / (2.0 * params[:, 3, None] ** 2))
    own_x = np.exp(-(b[None] - params[:, 2, None]) ** 2 / (2.0 * params[:, 3, None] ** 2))
    own = np.where(ok[:, None, None], params[:, 0, None, None] * own_y[:, :, None] * own_x[:, None, :], 0.0)
    return boxes + own, weights


def smoothed_peaks(image: np.ndarray, yx: np.ndarray, smooth: float, rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel maxima of the image smoothed by a Gaussian of ``smooth`` pixels (a matched filter
    when ``smooth`` is about the atoms' width): a quadratic fitted to the 3×3 pixels around the
    maximum nearest to each of ``yx``, re-centred ``rounds`` times.

    Returns the positions ``(N, 2)`` and whether a maximum was found (False: ``yx`` kept).
    """
    from scipy import ndimage

    image = np.asarray(image)
    finite = np.isfinite(image)
    # float32 smoothing about the mean (counts far from zero keep their precision): twice as fast
    image = (image - (image[finite].mean() if finite.any() else 0.0)).astype(np.float32)
    filled = np.where(finite, image, np.median(image[finite])) if not finite.all() else image
    surface = (ndimage.gaussian_filter(filled, smooth) if smooth > 0 else filled).astype(np.float64)
    Y, X = surface.shape
    dy, dx = (a.ravel() for a in np.mgrid[-1:2, -1:2])
    design = np.column_stack([np.ones(9), dy, dx, dy**2, dx**2, dy * dx])
    solve = np.linalg.pinv(design)
    out = np.array(yx, dtype=np.float64, copy=True)
    ok = np.zeros(len(out), dtype=bool)
    for _ in range(rounds):
        c = np.rint(out).astype(np.int64)
        c[:, 0] = np.clip(c[:, 0], 1, Y - 2)
        c[:, 1] = np.clip(c[:, 1], 1, X - 2)
        coef = surface[c[:, 0, None] + dy, c[:, 1, None] + dx] @ solve.T
        hess = np.stack([np.stack([2 * coef[:, 3], coef[:, 5]], 1), np.stack([coef[:, 5], 2 * coef[:, 4]], 1)], 1)
        det = hess[:, 0, 0] * hess[:, 1, 1] - hess[:, 0, 1] ** 2
        maximum = (det > 0) & (hess[:, 0, 0] < 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            step_y = -(hess[:, 1, 1] * coef[:, 1] - hess[:, 0, 1] * coef[:, 2]) / det
            step_x = -(-hess[:, 0, 1] * coef[:, 1] + hess[:, 0, 0] * coef[:, 2]) / det
        ok = maximum & (np.abs(step_y) <= 1) & (np.abs(step_x) <= 1)
        out = np.where(ok[:, None], c + np.column_stack([step_y, step_x]), out)
    return out, ok


def _fit_uncertainty(boxes: np.ndarray, weights: np.ndarray, params: np.ndarray, ok: np.ndarray):
    """Standard error (pixels) of each fitted centre and the residual noise σ of each box.

    From the Gauss–Newton covariance ``s² (JᵀJ)⁻¹`` at the fitted parameters, ``s²`` the
    residual variance of the box (its pixels' noise). Fully weighted boxes take the separable
    path of the fit (:func:`_separable_state`)."""
    n, b, _ = boxes.shape
    h = (b - 1) // 2
    offs = np.arange(-h, h + 1, dtype=np.float64)
    w = weights.reshape(n, -1)
    jtj = np.empty((n, 5, 5))
    cost = np.empty(n)
    uniform = (w == 1).all(1)
    if uniform.any():
        d = np.ascontiguousarray(boxes[uniform].transpose(1, 2, 0))
        gram, _, c = _separable_state(np.ascontiguousarray(params[uniform].T), d, d.sum((0, 1)), offs[:, None],
                                      (d * d).sum((0, 1)))
        jtj[uniform], cost[uniform] = gram.transpose(2, 0, 1), c
    if (~uniform).any():
        model, jac = _model_and_jacobian(params[~uniform], np.repeat(offs, b), np.tile(offs, b))
        wu = w[~uniform]
        cost[~uniform] = (((boxes[~uniform].reshape(len(wu), -1) - model) ** 2) * wu).sum(1)
        jtj[~uniform] = np.einsum("npi,npj,np->nij", jac, jac, wu)
    noise2 = np.clip(cost, 0.0, None) / np.maximum(w.sum(1) - 5, 1.0)
    error = np.full(n, np.inf)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        good = ok & np.isfinite(jtj).all((1, 2)) & (np.abs(np.linalg.det(jtj)) > 0)
        if good.any():
            try:
                inverse = np.linalg.inv(jtj[good])
            except np.linalg.LinAlgError:
                inverse = np.linalg.pinv(jtj[good])
            cov = inverse * noise2[good, None, None]
            error[good] = np.sqrt(np.clip(cov[:, 1, 1] + cov[:, 2, 2], 0, None))
    return error, np.sqrt(noise2)


def _peak_uncertainty(noise: np.ndarray, amplitude: np.ndarray, width: np.ndarray, smooth: float) -> np.ndarray:
    """Standard error (pixels) of :func:`smoothed_peaks` for a Gaussian atom (peak ``amplitude``,
    σ ``width``) in white noise of σ ``noise``: the smoothed noise's gradient over the smoothed
    atom's curvature, for both axes."""
    total2 = width**2 + smooth**2
    gradient = noise / (np.sqrt(8 * np.pi) * smooth**2)
    curvature = amplitude * width**2 / total2**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(2.0) * gradient / curvature


def mean_atom_width(image: np.ndarray, yx: np.ndarray, spacing: float) -> float | None:
    """The atoms' Gaussian σ (pixels) from one fit to their average: the mean of boxes of ±0.45 ×
    ``spacing`` around every position, which averages the noise of each atom away (at a few counts
    per atom, single fits lock onto noise speckles). ``None`` with fewer than 3 atoms."""
    if len(yx) < 3 or not np.isfinite(spacing):
        return None
    h = max(2, int(0.45 * spacing))
    boxes, weights, centres = extract_boxes(np.asarray(image, dtype=np.float64), yx, h)
    centred = np.all(centres == np.rint(yx), axis=1)  # boxes moved inwards at the border are off-centre
    if centred.sum() < 3:
        return None
    boxes, weights = boxes[centred], weights[centred]
    total = weights.sum(0)
    if (total == 0).any():
        return None
    mean = (boxes * weights).sum(0) / total
    params, ok = fit_gaussians(mean[None], None, None, iterations=20)
    return float(params[0, 3]) if ok[0] else None


def refine_positions(
    image,
    yx,
    *,
    half_box: int | None = None,
    sigma: float | None = None,
    iterations: int = 5,
    neighbours: bool | None = None,
    fallback: bool = True,
) -> dict[str, np.ndarray]:
    """Sub-pixel positions of atoms in one frame: batched 2D Gaussian fits, or the maximum of the
    smoothed frame wherever that is the more precise of the two.

    Parameters
    ----------
    image : (Y, X) array
        Raw frame (bright atoms).
    yx : (N, 2) array
        Starting positions in pixels (e.g. from peak finding).
    half_box : int, optional
        Box half-size in pixels. Default: ¼ of the median nearest-neighbour
        distance (at least 2); when the fitted atoms are wider (1.8 × median σ
        exceeds it) they are refitted with that half-size, at most 0.45 × the
        nearest-neighbour distance.
    sigma : float, optional
        Starting Gaussian width (pixels); default from the box's second moment.
    iterations : int
        Levenberg–Marquardt steps.
    neighbours : bool, optional
        Subtract every other atom's fitted Gaussian from each box and fit again
        (removes the pull of overlapping neighbours). Default: only when the atoms
        stand well above the noise (median amplitude ≥ 8 × the residual σ): at low
        dose the neighbours' fitted models are themselves noisy and subtracting them
        made positions worse in tests (RMSE 0.04 → 0.09 × spacing at 3–20 counts).
    fallback : bool
        Per atom, keep the maximum of the frame smoothed by the atoms' median width
        (:func:`smoothed_peaks`) instead of the fit when the fit failed or its
        centre's standard error (from its covariance and residuals) exceeds the
        smoothed maximum's (from the noise, the atom's amplitude and width): low
        dose, overlapping columns, a fit pulled off by contamination.

    Returns
    -------
    fit : dict of (N,) arrays
        ``y, x`` (refined, pixels), ``sigma``, ``amplitude``, ``background``,
        ``refined`` (bool; False = the fit failed), ``position_from`` (``"fit"``,
        ``"smoothed peak"`` or ``"start"``) and ``position_error`` (estimated
        standard error of the kept position, pixels).
    """
    frame = np.asarray(image, dtype=np.float64)
    if frame.ndim != 2:
        raise ValueError(f"image: expected one (Y, X) frame, got shape {frame.shape}")
    yx = np.asarray(yx, dtype=np.float64).reshape(-1, 2)
    if len(yx) and not np.isfinite(yx).all():
        raise ValueError("yx: positions must be finite")
    h = default_half_box(yx) if half_box is None else int(half_box)
    if h < 1:
        raise ValueError(f"half_box: must be at least 1 pixel, got {half_box}")
    nn = nearest_neighbour_distance(yx)
    typical = sigma if sigma is not None else mean_atom_width(frame, yx, nn)
    if half_box is None and typical is not None and np.isfinite(nn):
        # a box of ±1.8 σ holds the atom (±¼ spacing holds only ±1 σ of a blurred one and the centre
        # gets noisy), staying clear of the neighbours
        h = max(h, min(int(round(1.8 * typical)), int(0.45 * nn)))
    boxes, weights, centres = extract_boxes(frame, yx, h)
    params, ok = fit_gaussians(boxes, weights, initial_guess(boxes, weights, typical), iterations=iterations)
    if typical is not None:
        # a width far from the atoms' own is a fit that locked onto a noise speckle or merged two atoms
        ok &= (params[:, 3] >= 0.6 * typical) & (params[:, 3] <= 1.6 * typical)
    error, noise = _fit_uncertainty(boxes, weights, params, ok) if len(yx) else (np.zeros(0), np.zeros(0))
    if neighbours is None:
        neighbours = bool(ok.sum() >= 2 and np.median(params[ok, 0] / np.maximum(noise[ok], 1e-12)) >= 8.0)
    for _ in range(2 if neighbours and ok.sum() >= 2 else 0):  # the second round gains a little more
        clean, clean_weights = _without_neighbours(frame, centres, params, ok, h)
        again, ok2 = fit_gaussians(clean, clean_weights, params, iterations=iterations)
        params = np.where((ok & ok2)[:, None], again, params)
        error, noise = _fit_uncertainty(clean, clean_weights, params, ok)
    y = np.where(ok, centres[:, 0] + params[:, 1], yx[:, 0])
    x = np.where(ok, centres[:, 1] + params[:, 2], yx[:, 1])
    source = np.where(ok, "fit", "start").astype(object)
    if fallback and len(yx):
        width = typical if typical is not None else (float(np.median(params[ok, 3])) if ok.any() else
                                                     max(1.0, 0.25 * nn if np.isfinite(nn) else 2.0))
        typical_noise = float(np.median(noise[ok])) if ok.any() else float(np.median(noise))
        typical_amp = float(np.median(params[ok, 0])) if ok.any() else float(np.ptp(boxes) / 2)
        peak, found = smoothed_peaks(frame, yx, width)
        peak_error = _peak_uncertainty(np.where(ok, noise, typical_noise), np.where(ok, params[:, 0], typical_amp),
                                       np.where(ok, params[:, 3], width), width)
        # error floors that noise does not explain (measured on low-dose graphene against truth): the
        # smoothing widens the neighbours' tails, which pull the smoothed maximum (~3 % of the spacing);
        # a fit keeps ~2 % (scan distortion within the box, shape mismatch)
        spacing = nn if np.isfinite(nn) else 4 * width
        peak_error = np.hypot(peak_error, 0.03 * spacing)
        error = np.hypot(error, 0.02 * spacing)
        use = found & (~ok | (peak_error < error))
        y, x = np.where(use, peak[:, 0], y), np.where(use, peak[:, 1], x)
        source = np.where(use, "smoothed peak", source).astype(object)
        error = np.where(use, peak_error, np.where(ok, error, np.nan))
    return {
        "y": y,
        "x": x,
        "sigma": np.where(ok, params[:, 3], np.nan),
        "amplitude": np.where(ok, params[:, 0], np.nan),
        "background": np.where(ok, params[:, 4], np.nan),
        "refined": ok,
        "position_from": source,
        "position_error": np.where(np.isfinite(error), error, np.nan),
    }


def refine_sites(movie, sites: pd.DataFrame, *, half_box: int | None = None, iterations: int = 5,
                 neighbours: bool | None = None, fallback: bool = True) -> pd.DataFrame:
    """Refine every site of a table in its own frame; adds ``fit_sigma``, ``refined`` and
    ``position_from`` columns.

    ``half_box`` defaults per frame; ``neighbours`` and ``fallback`` work as in :func:`refine_positions`.
    """
    data = as_movie(movie)
    frames, yx = positions_of(sites)
    out = sites.copy()
    out["fit_sigma"] = np.nan
    out["refined"] = False
    if frames.size and (frames.min() < 0 or frames.max() >= len(data)):
        raise ValueError(f"sites: frame numbers must lie in 0..{len(data) - 1}")
    y, x = yx[:, 0].copy(), yx[:, 1].copy()
    fit_sigma = np.full(len(out), np.nan)
    refined = np.zeros(len(out), dtype=bool)
    source = np.full(len(out), "start", dtype=object)
    for t in np.unique(frames):
        rows = np.flatnonzero(frames == t)
        fit = refine_positions(data[t], yx[rows], half_box=half_box, iterations=iterations, neighbours=neighbours,
                               fallback=fallback)
        y[rows], x[rows] = fit["y"], fit["x"]
        fit_sigma[rows], refined[rows], source[rows] = fit["sigma"], fit["refined"], fit["position_from"]
    out["y"], out["x"], out["fit_sigma"], out["refined"], out["position_from"] = y, x, fit_sigma, refined, source
    return out
