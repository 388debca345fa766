"""HyperSpy signals of latent maps and of the sites table, written with rosettasciio (``.hspy``).

No HyperSpy import: rosettasciio's ``hspy`` writer takes a plain signal dictionary. In HyperSpy,
``hs.load("latent_map_angle.hspy")`` gives a ``Signal2D`` with the frame as navigation axis and
``y, x`` as signal axes (nm when the movie is calibrated); ``hs.load("sites.hspy")`` gives a
``BaseSignal`` of shape ``(sites | columns)`` whose column names are in
``original_metadata.columns``. Needs the ``io`` extra (rosettasciio, h5py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.latent_maps import latent_maps
from ..io.files import atomic_write
from ..io.sites import latent_columns, validate_sites


def _axis(name: str, size: int, scale: float = 1.0, units: str = "", navigate: bool = False) -> dict:
    return {"name": name, "size": int(size), "scale": float(scale), "offset": 0.0, "units": units,
            "navigate": bool(navigate)}


def _signal(data: np.ndarray, axes: list[dict], title: str, quantity: str = "", original: dict | None = None) -> dict:
    from .. import __version__

    return {
        "data": data,
        "axes": axes,
        "metadata": {"General": {"title": title}, "Signal": {"signal_type": "", "quantity": quantity}},
        "original_metadata": original or {},
        "package_info": {"name": "napari-rvae", "version": __version__},
        "learning_results": {},
        "attributes": {"_lazy": False},
        "tmp_parameters": {},
        "models": {},
    }


def latent_map_signal(sites: pd.DataFrame, column: str, shape, *, pixel_size_nm=None, step: int = 1,
                      method: str = "linear") -> dict:
    """The per-frame map of one latent column as a HyperSpy ``Signal2D`` dictionary.

    ``shape`` is the frame size ``(Y, X)`` in pixels; maps are interpolated between sites every
    ``step`` pixels (:func:`napari_rvae.analysis.latent_maps.latent_maps`; angles through
    cos/sin). Axes: ``t`` (navigation), ``y``, ``x`` in nm when ``pixel_size_nm`` is given.
    """
    maps = latent_maps(sites, column, shape, step=step, method=method)
    py, px = pixel_size_nm if pixel_size_nm is not None else (1.0, 1.0)
    unit = "nm" if pixel_size_nm is not None else "px"
    axes = [_axis("t", maps.shape[0], 1.0, "frame", navigate=True),
            _axis("y", maps.shape[1], py * step, unit), _axis("x", maps.shape[2], px * step, unit)]
    quantity = f"{column} (rad)" if column == "angle" else (f"{column} (px)" if column in ("dx", "dy") else column)
    return _signal(maps.astype(np.float32), axes, f"latent map {column}", quantity,
                   {"source": "napari-rvae latent map", "column": column, "interpolation": method, "step_px": int(step)})


def sites_signal(sites: pd.DataFrame) -> dict:
    """The sites table as a HyperSpy ``BaseSignal`` dictionary of shape ``(sites | columns)``.

    Numeric columns are kept as float64; ``kind`` becomes ``kind_code`` with its names in
    ``original_metadata.kinds``; column names are in ``original_metadata.columns``.
    """
    table = validate_sites(sites).reset_index(drop=True)
    kinds = sorted(str(k) for k in table["kind"].astype(str).unique())
    table["kind_code"] = table["kind"].astype(str).map({k: i for i, k in enumerate(kinds)})
    numeric = [c for c in table.columns if c != "kind" and pd.api.types.is_numeric_dtype(table[c])]
    data = table[numeric].to_numpy(dtype=np.float64)
    axes = [_axis("site", len(table), navigate=True), _axis("column", len(numeric))]
    return _signal(data, axes, "sites", "", {"columns": numeric, "kinds": kinds,
                                              "source": "napari-rvae sites table (positions in pixels)"})


def write_hspy(path: str | os.PathLike, signal: dict) -> Path:
    """Write a signal dictionary to ``path`` (``.hspy``) atomically."""
    path = Path(path)
    if path.suffix.lower() != ".hspy":
        raise ValueError(f"{path}: a HyperSpy signal is written to a .hspy file")
    try:
        from rsciio.hspy import file_writer
    except ImportError:
        raise ValueError("HyperSpy export needs rosettasciio and h5py: pip install 'napari-rvae[io]'") from None
    return atomic_write(path, lambda tmp: file_writer(str(tmp), signal, show_progressbar=False))


def save_hyperspy(folder: str | os.PathLike, sites: pd.DataFrame, shape, *, columns=None, pixel_size_nm=None,
                  step: int = 1) -> dict[str, Path]:
    """Write ``sites.hspy`` and one ``latent_map_<column>.hspy`` per latent column into ``folder``.

    ``columns`` defaults to the latents present (``angle, dx, dy, z0 …``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    columns = list(columns) if columns is not None else latent_columns(sites)
    missing = [c for c in columns if c not in sites.columns]
    if missing:
        raise ValueError(f"sites: no column(s) {', '.join(missing)} to map")
    written = {"sites": write_hspy(folder / "sites.hspy", sites_signal(sites))}
    for column in columns:
        signal = latent_map_signal(sites, column, shape, pixel_size_nm=pixel_size_nm, step=step)
        written[f"latent_map_{column}"] = write_hspy(folder / f"latent_map_{column}.hspy", signal)
    return written
