"""Reading movies and writing site tables, models and run records (no Qt)."""

from .movie import Movie, read_movie, select_movie
from .files import atomic_write, atomic_write_text, load_model_files, read_json, save_model_files, write_json
from .sites import SITE_COLUMNS, empty_sites, latent_columns, make_sites, read_sites, validate_sites, write_sites

__all__ = [
    "Movie",
    "SITE_COLUMNS",
    "atomic_write",
    "atomic_write_text",
    "empty_sites",
    "latent_columns",
    "load_model_files",
    "make_sites",
    "read_json",
    "read_movie",
    "read_sites",
    "save_model_files",
    "select_movie",
    "validate_sites",
    "write_json",
    "write_sites",
]
