"""Reading movies and writing site tables, models and run records (no Qt)."""

from .files import atomic_write, atomic_write_text, load_model_files, read_json, save_model_files, write_json
from .sites import SITE_COLUMNS, empty_sites, latent_columns, make_sites, read_sites, validate_sites, write_sites

__all__ = [
    "SITE_COLUMNS",
    "atomic_write",
    "atomic_write_text",
    "empty_sites",
    "latent_columns",
    "load_model_files",
    "make_sites",
    "read_json",
    "read_sites",
    "save_model_files",
    "validate_sites",
    "write_json",
    "write_sites",
]
