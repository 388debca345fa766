"""The decoder of a trained model as a file other tools load: TorchScript or ONNX, plus a JSON.

The exported decoder takes the latents in the units of the latents table and returns windows,
exactly as :func:`napari_rvae.vae.decode` does:

* ``z`` float32 ``(N, k)`` — content latents ``z0 … z{k−1}``;
* ``angle`` float32 ``(N,)`` — rotation in radians (rVAE / skip-rVAE only);
* ``dx``, ``dy`` float32 ``(N,)`` — shift in pixels (spatial models; ``dx`` only in 1D);
* ``classes`` int64 ``(N,)`` — class of each window (class-conditional models only);

and returns ``windows`` float32 ``(N, h, w)`` (``(N, w)`` in 1D): the decoded mean, normalised
like the training windows (the JSON holds that normalisation). ``N`` is free.

TorchScript (``.pt``) needs only torch to load (``torch.jit.load``, or libtorch from C++);
ONNX (``.onnx``) needs the ``onnx`` extra to write and any ONNX runtime to run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..io.files import atomic_write, atomic_write_text
from ..vae.models import InvariantVAE

FORMATS = {"torchscript": ".pt", "onnx": ".onnx"}


def decoder_inputs(model: InvariantVAE) -> list[dict]:
    """Name, shape, dtype, unit and meaning of each input of the exported decoder, in order."""
    cfg = model.config
    inputs = [{"name": "z", "shape": ["N", cfg.latent], "dtype": "float32", "unit": "",
               "description": f"content latents z0 … z{cfg.latent - 1} (N(0, 1) prior)"}]
    if cfg.has_angle:
        inputs.append({"name": "angle", "shape": ["N"], "dtype": "float32", "unit": "rad",
                       "description": "rotation of the decoded window, radians"})
    for axis in ("dx", "dy")[: cfg.n_shift]:
        along = "columns" if axis == "dx" else "rows"
        inputs.append({"name": axis, "shape": ["N"], "dtype": "float32", "unit": "pixel",
                       "description": f"shift of the decoded window along {along}, pixels"})
    if cfg.n_classes:
        inputs.append({"name": "classes", "shape": ["N"], "dtype": "int64", "unit": "",
                       "description": f"class of each window, 0 … {cfg.n_classes - 1}"})
    return inputs


class LatentsToWindows(nn.Module):
    """A model's decoder with the latents table's units: ``forward(z, [angle], [dx, dy], [classes])``."""

    def __init__(self, model: InvariantVAE):
        super().__init__()
        self.model = model.eval()
        cfg = model.config
        self.names = [spec["name"] for spec in decoder_inputs(model)]
        # pixels per shift-latent unit, as in vae.latents.decode (x first)
        self.pixels_per_unit = [cfg.translation_prior * (n - 1) / 2 for n in cfg.window[::-1]]
        self.bernoulli = cfg.likelihood == "bernoulli"
        self.window = tuple(cfg.window)

    def forward(self, *inputs):
        given = dict(zip(self.names, inputs))
        z = given["z"]
        shifts = [given[axis] / ppu for axis, ppu in zip(("dx", "dy"), self.pixels_per_unit) if axis in given]
        shift = torch.stack(shifts, dim=1) if shifts else None
        out = self.model.decode_parts(given.get("angle"), shift, z, given.get("classes"))
        if self.bernoulli:
            out = torch.sigmoid(out)
        return out.reshape((z.shape[0],) + self.window)


def example_inputs(model: InvariantVAE, n: int = 3, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the right shapes and dtypes (for tracing and for checks)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = []
    for spec in decoder_inputs(model):
        if spec["dtype"] == "int64":
            inputs.append(torch.randint(0, max(model.config.n_classes, 1), (n,), generator=generator))
        else:
            shape = (n, spec["shape"][1]) if len(spec["shape"]) == 2 else (n,)
            inputs.append(torch.randn(shape, generator=generator))
    return tuple(inputs)


def export_decoder(model: InvariantVAE, path: str | os.PathLike, *, format: str | None = None) -> tuple[Path, Path]:
    """Write the decoder to ``path`` (``.pt`` TorchScript or ``.onnx``) and its inputs to ``path.json``.

    Parameters
    ----------
    model : InvariantVAE
        A trained model (:func:`napari_rvae.vae.load_model`).
    path : path
        Output file; its extension picks the format unless ``format`` is given.
    format : {"torchscript", "onnx"}, optional

    Returns
    -------
    (decoder file, JSON file)
    """
    path = Path(path)
    if format is None:
        format = next((name for name, suffix in FORMATS.items() if path.suffix.lower() == suffix), None)
        if format is None:
            raise ValueError(f"{path}: give a .pt (TorchScript) or .onnx file, or choose the format")
    if format not in FORMATS:
        raise ValueError(f"format: choose one of {', '.join(FORMATS)}, got {format!r}")
    if path.suffix.lower() != FORMATS[format]:
        raise ValueError(f"{path}: a {format} decoder is written to a {FORMATS[format]} file")
    wrapper = LatentsToWindows(model)
    inputs = example_inputs(model)
    if format == "torchscript":
        atomic_write(path, lambda tmp: _save_torchscript(wrapper, inputs, tmp))
    else:
        atomic_write(path, lambda tmp: _save_onnx(wrapper, inputs, tmp))
    description = _description(model, path, format)
    json_path = path.with_name(path.name + ".json")
    atomic_write_text(json_path, json.dumps(description, indent=2) + "\n")
    return path, json_path


def _save_torchscript(wrapper: nn.Module, inputs, tmp: Path) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        # torch 2.9+ marks torch.jit as deprecated; a traced module still loads in torch and libtorch
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapper, inputs, check_trace=False)
        traced = torch.jit.freeze(traced.eval())
        torch.jit.save(traced, str(tmp))


def _save_onnx(wrapper: nn.Module, inputs, tmp: Path) -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ValueError("ONNX export needs the onnx extra: pip install 'napari-rvae[onnx]' "
                         "(or export TorchScript: a .pt file)") from None
    names = wrapper.names
    batch = torch.export.Dim("N", min=1)
    dynamic = tuple({0: batch} for _ in names)
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(wrapper, inputs, dynamo=True, input_names=names, output_names=["windows"],
                                    dynamic_shapes=(dynamic,), verbose=False)
        program.save(str(tmp))


def _description(model: InvariantVAE, path: Path, format: str) -> dict:
    from .. import __version__

    cfg = model.config
    inputs = decoder_inputs(model)
    call = ", ".join(spec["name"] for spec in inputs)
    load = (f"torch.jit.load('{path.name}')({call})" if format == "torchscript"
            else f"onnxruntime.InferenceSession('{path.name}').run(None, {{{', '.join(repr(s['name']) + ': ...' for s in inputs)}}})")
    return {
        "format": format,
        "file": path.name,
        "inputs": inputs,
        "output": {"name": "windows", "shape": ["N", *cfg.window], "dtype": "float32",
                   "description": "decoded mean window" + (" (sigmoid of the logits)" if cfg.likelihood == "bernoulli" else "")
                   + ", normalised like the training windows (see 'normalisation')"},
        "load": load,
        "arch": cfg.arch,
        "window": list(cfg.window),
        "likelihood": cfg.likelihood,
        "latent_columns": cfg.structural_names() + [f"z{i}" for i in range(cfg.latent)],
        "normalisation": _plain(getattr(model, "normalisation", {"mode": "none"})),
        "napari_rvae_version": __version__,
        "torch_version": torch.__version__,
    }


def _plain(value):
    """JSON-safe copy (numpy scalars and arrays become Python numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
