"""napari-rvae: invariant VAEs for STEM / PFM movies, inside napari.

The core (``io``, ``synth``, ``segment``, ``detect``, ``patches``, ``vae``,
``analysis``, ``pipeline``) never imports Qt; only ``widgets`` does.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
