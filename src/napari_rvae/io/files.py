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
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # some writers (safetensors) replace the file with a 0600 one
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


#: JSON files napari-rvae reads (model.json, project.json, run.json) are small; larger is not ours
MAX_JSON_BYTES = 64 * 2**20


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON object; a broken, huge or absurdly nested file raises one clear ``ValueError``."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ValueError(f"{path}: {path.stat().st_size / 1e6:.0f} MB is too large for a napari-rvae JSON file")
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, not a JSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a valid JSON file ({' '.join(str(err).split())})") from None
    except RecursionError:
        raise ValueError(f"{path}: not a valid JSON file (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(obj).__name__}")
    return obj


def save_model_files(folder: str | os.PathLike, tensors: Mapping[str, Any], config: Mapping[str, Any],
                     extra: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Save ``tensors`` (name → torch tensor) and ``config`` into ``folder``, replacing it as a whole.

    Everything is written into a staging folder beside ``folder`` and swapped in at the
    end (:func:`~.folders.replaced_folder`): a crash or a full disk leaves the previous
    model or the new one, never new weights beside an old ``model.json``. ``extra`` maps
    more file names (``"training.safetensors"``) to tensors saved the same way. An existing
    folder that holds other files (not a model) is refused, not replaced.
    """
    import torch

    from .. import __version__
    from .folders import replaced_folder

    def clean(items: Mapping[str, Any]) -> dict:
        return {k: v.detach().to("cpu").contiguous() for k, v in items.items() if isinstance(v, torch.Tensor)}

    cfg = dict(config)
    cfg.setdefault("package_version", __version__)
    weights = clean(tensors)
    others = {name: clean(items) for name, items in (extra or {}).items()}
    with replaced_folder(folder, markers=(WEIGHTS_NAME, CONFIG_NAME)) as stage:
        atomic_write(stage / WEIGHTS_NAME, lambda p: _save_tensors(weights, p))
        for name, items in others.items():
            atomic_write(stage / name, lambda p, t=items: _save_tensors(t, p))
        write_json(stage / CONFIG_NAME, cfg)
    return Path(folder)


def _save_tensors(tensors: dict, path: Path) -> None:
    """safetensors' ``save_file``, its I/O errors (a full disk) raised as the ``OSError`` they are."""
    import re

    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(tensors, str(path))
    except SafetensorError as err:
        code = re.search(r"os error (\d+)", str(err))
        if code:
            number = int(code.group(1))
            raise OSError(number, os.strerror(number), str(path)) from None
        raise OSError(f"{path}: could not write the weights ({' '.join(str(err).split())})") from None


def load_tensor_file(path: str | os.PathLike) -> dict:
    """Tensors of one ``.safetensors`` file, never unpickling; ``ValueError`` for anything else."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    head = path.read_bytes()[:8] if path.is_file() else b""
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise ValueError(f"{path}: looks like a pickle / torch .pt file; only safetensors weights are accepted")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path}: not a valid safetensors file ({' '.join(str(err).split())})") from None


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
    config = read_model_record(folder, kind)
    weights = _model_folder(folder) / WEIGHTS_NAME
    tensors = load_tensor_file(weights)
    import torch

    broken = [name for name, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if broken:
        raise ValueError(f"{weights}: {len(broken)} weight tensor(s) hold NaN or infinite values ({broken[0]}, …): "
                         "the training that saved it diverged; retrain with a lower learning rate")
    return tensors, config


def read_model_record(folder: str | os.PathLike, kind: str | None = None) -> dict:
    """The ``model.json`` of a model folder (as :func:`load_model_files` checks it), without its weights
    and without torch: what a process that only plans the work needs (scale, windows' recipe)."""
    from .folders import recover_folder

    folder = _model_folder(folder)
    try:
        recover_folder(folder)  # a save interrupted by a crash is finished (or undone) first
    except OSError:
        pass  # a read-only place: read what is there
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
    return config


def _model_folder(folder) -> Path:
    folder = Path(folder)
    return folder.parent if folder.is_file() else folder


def user_data_folder(*parts: str) -> Path:
    """napari-rvae's folder in the platform's user-data place (platformdirs), e.g.
    ``~/.local/share/napari-rvae`` on Linux, ``%LOCALAPPDATA%\\napari-rvae`` on Windows,
    ``~/Library/Application Support/napari-rvae`` on macOS; ``parts`` name a sub-folder.
    Not created here."""
    import platformdirs

    return Path(platformdirs.user_data_path("napari-rvae", appauthor=False)).joinpath(*parts)
