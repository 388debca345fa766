"""Sites from movies: atoms (with classes and sub-pixel positions), domain walls, rings / hollow sites, tracks.

Core only (numpy, scipy, scikit-image, networkx); the segmenter is imported
lazily by :func:`detect_atoms` when ``method="model"``.
"""

from .atoms import atoms_from_image, atoms_from_probabilities, classify_by_intensity, site_intensity
from .find import detect_atoms, model_probabilities
from .refine import fit_gaussians, refine_positions, refine_sites
from .rings import bond_graph, bond_orientation, find_rings, find_rings_in_frame, ring_counts_at, rings_at
from .tracks import link_tracks, tracks_layer_data
from .phase_quality import assess_phase, level_lines
from .walls import (analyse_walls, domain_map, find_walls, switched_fraction, wall_mask, wall_sites,
                    walls_from_probabilities)

__all__ = [
    "analyse_walls",
    "assess_phase",
    "level_lines",
    "atoms_from_image",
    "atoms_from_probabilities",
    "bond_graph",
    "bond_orientation",
    "classify_by_intensity",
    "detect_atoms",
    "domain_map",
    "find_rings",
    "find_rings_in_frame",
    "find_walls",
    "fit_gaussians",
    "link_tracks",
    "model_probabilities",
    "refine_positions",
    "refine_sites",
    "ring_counts_at",
    "rings_at",
    "site_intensity",
    "switched_fraction",
    "tracks_layer_data",
    "wall_mask",
    "wall_sites",
    "walls_from_probabilities",
]
