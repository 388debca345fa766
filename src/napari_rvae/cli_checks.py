"""Bounds of the command line's numeric options: a value that means nothing (NaN, a negative
length) or implies a huge allocation (a smoothing σ of 10⁶ pixels, a 10⁶-pixel sample) is refused
with one line that names the option, before any work."""

from __future__ import annotations

import argparse

from .io.limits import available_memory, bounded, human_bytes


def check_sample_size(params: dict) -> None:
    """Frames and size that fit in memory (a generator holds several arrays of the movie's size)."""
    for name, high in (("size", 4096), ("frames", 10000)):
        if name in params:
            bounded(params[name], f"--{name}", 1, high)
    need = 8 * 4 * int(params.get("frames", 1)) * int(params.get("size", 256)) ** 2
    free = available_memory()
    if free is not None and need > free:
        raise ValueError(f"--frames {params.get('frames', 1)} --size {params.get('size', 256)}: the sample needs about "
                         f"{human_bytes(need)} of memory, {human_bytes(free)} is available; make it smaller")


def check_detect_options(args: argparse.Namespace, shape) -> None:
    """Lengths in pixels within the frame, smoothing that leaves atoms, finite thresholds: a σ of 10⁶
    would build a kernel of millions of pixels and run for hours."""
    side = float(max(shape[-2:]))
    if args.sigma is not None:
        bounded(args.sigma, "--sigma", 0, min(50.0, side), unit="pixels", why="wider smoothing blurs every atom away")
    bounded(args.tip_sigma, "--tip-sigma", 0, min(50.0, side), unit="pixels")
    bounded(args.edge_margin, "--edge-margin", 0, side / 2, unit="pixels", why="half the frame")
    bounded(args.wall_spacing, "--wall-spacing", 0, side, unit="pixels")
    if args.rescale is not None:
        bounded(args.rescale, "--rescale", 0, 8, low_open=True)
    if args.min_distance is not None:
        bounded(args.min_distance, "--min-distance", 1, min(128.0, side), unit="pixels",
                why="atoms further apart than that need --rescale instead")
    if args.min_domain is not None:
        bounded(args.min_domain, "--min-domain", 0, 1e12, unit="nm²")
    for name in ("threshold", "bond_length", "r_max", "spacing"):
        value = getattr(args, name)
        if value is not None:
            if name == "threshold":
                bounded(value, "--threshold", -1e30, 1e30)
            else:
                bounded(value, f"--{name.replace('_', '-')}", 0, side, unit="pixels", low_open=True)
    for name, low in (("n_walls", 1), ("max_gap", 0), ("min_length", 1)):
        value = getattr(args, name)
        if value is not None and value < low:
            raise ValueError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")


def check_analyze_options(args: argparse.Namespace) -> None:
    if args.window is not None:
        bounded(args.window, "--window", 4, 256, unit="pixels")
    if args.spacing is not None:
        bounded(args.spacing, "--spacing", 0, 1e4, unit="pixels", low_open=True)
    bounded(args.latent, "--latent", 1, 64)
    if args.epochs is not None:
        bounded(args.epochs, "--epochs", 1, 1e6)
    bounded(args.clusters, "--clusters", 1, 100)
    if args.grid is not None:
        bounded(args.grid, "--grid", 1, 4096, unit="pixels")
    for name in ("per_frame", "walls_per_frame"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
