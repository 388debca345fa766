"""Synthetic STEM / PFM movies with exact ground truth (numpy + scipy only)."""

from .render import add_noise, normalise01, render_spots, scan_jitter

__all__ = ["add_noise", "normalise01", "render_spots", "scan_jitter"]
