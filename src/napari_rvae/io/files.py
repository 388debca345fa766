"""Safe file helpers shared by every stage: atomic writes and model files.

A model on disk is a folder holding ``model.safetensors`` (tensors only) and
``model.json`` (architecture, training history, package version). Nothing here
ever unpickles: loading a hostile file raises ``ValueError``, it never executes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "model.json"


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Write a file atomically: ``write(tmp_path)`` then rename over ``path``.

    A crash mid-write leaves any previous file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the user's usual permissions
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: read once at import: os.umask is process-wide and changing it later would race with threads
_UMASK = _read_umask()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (numpy scalars/arrays allowed)."""
    return atomic_write_text(path, json.dumps(obj, indent=1, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot store {type(o).__name__} in JSON")


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON object; a broken file raises one clear ``ValueError``."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a valid JSON file ({err})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(obj).__name__}")
    return obj


def save_model_files(folder: str | os.PathLike, tensors: Mapping[str, Any], config: Mapping[str, Any]) -> Path:
    """Save ``tensors`` (name → torch tensor) and ``config`` into ``folder``.

    Both files are written atomically; the weights first, so a folder whose
    ``model.json`` exists always has matching weights.
    """
    import torch
    from safetensors.torch import save_file

    from .. import __version__

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items() if isinstance(v, torch.Tensor)}
    atomic_write(folder / WEIGHTS_NAME, lambda p: save_file(clean, str(p)))
    cfg = dict(config)
    cfg.setdefault("package_version", __version__)
    write_json(folder / CONFIG_NAME, cfg)
    return folder


def load_model_files(folder: str | os.PathLike, kind: str | None = None) -> tuple[dict, dict]:
    """Load ``(tensors, config)`` from a model folder, never unpickling.

    Parameters
    ----------
    folder : path
        A folder with ``model.safetensors`` and ``model.json`` (or the path of
        either file inside it).
    kind : str, optional
        When given, ``config["kind"]`` must equal it (e.g. ``"vae"`` or
        ``"segmenter"``), so a segmenter is never loaded as a VAE.

    Raises
    ------
    ValueError
        Missing files, a pickle / truncated / corrupt weights file, or a
        config of another kind.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    weights, config_path = folder / WEIGHTS_NAME, folder / CONFIG_NAME
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such model folder")
    if not weights.exists() or not config_path.exists():
        raise ValueError(f"{folder}: a model folder needs both {WEIGHTS_NAME} and {CONFIG_NAME}")
    config = read_json(config_path)
    if kind is not None and config.get("kind") != kind:
        raise ValueError(
            f"{folder}: this is a {config.get('kind', 'unknown')!r} model, expected a {kind!r} model"
        )
    head = weights.read_bytes()[:8]
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise ValueError(f"{weights}: looks like a pickle / torch .pt file; only safetensors weights are accepted")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{weights}: not a valid safetensors file ({err})") from None
    return tensors, config


def user_data_folder(*parts: str) -> Path:
    """napari-rvae's folder in the platform's user-data place (platformdirs), e.g.
    ``~/.local/share/napari-rvae`` on Linux, ``%LOCALAPPDATA%\\napari-rvae`` on Windows,
    ``~/Library/Application Support/napari-rvae`` on macOS; ``parts`` name a sub-folder.
    Not created here."""
    import platformdirs

    return Path(platformdirs.user_data_path("napari-rvae", appauthor=False)).joinpath(*parts)
