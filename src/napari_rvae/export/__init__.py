"""Exports to the formats peers use (no Qt).

- :mod:`.atomai` — AtomAI's per-frame coordinate dictionary and ``.npy`` window stack.
- :mod:`.hyperspy` — latent maps and the sites table as HyperSpy signals (``.hspy`` via rosettasciio).
- :mod:`.decoder` — a trained model's decoder as TorchScript (``.pt``) or ONNX, with a JSON of its inputs.

The command line is ``napari-rvae export atomai|hyperspy|decoder`` (:mod:`.commands`).
"""

# imported on first use (PEP 562): the decoder needs torch, the others do not
_NAMES = {
    "atomai_coordinates": "atomai", "save_atomai": "atomai",
    "latent_map_signal": "hyperspy", "sites_signal": "hyperspy", "write_hspy": "hyperspy", "save_hyperspy": "hyperspy",
    "export_decoder": "decoder", "decoder_inputs": "decoder",
}
__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
