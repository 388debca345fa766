"""Long movies in chunks of frames with dask: detection, probability maps, windows and encoding.

Each chunk of frames is one task (read → work → write), so memory stays bounded by a few chunks
whatever the movie's length; the tasks run on local processes (default), local threads or a
``dask.distributed`` cluster, with the same results as the in-memory functions. Sites and latents
go to folders of Parquet partitions (:mod:`.store`), maps to zarr. No Qt.
"""

from importlib import import_module

_WHERE = {"SCHEDULERS": "graph", "ChunkSettings": "graph", "frame_ranges": "graph",
          "atom_maps_chunked": "steps", "detect_atoms_chunked": "steps", "encode_sites_chunked": "steps",
          "run_record": "steps", "open_frames": "store", "read_partitions": "store"}

__all__ = sorted(_WHERE)


def __getattr__(name):  # imported on first use: the command line builds its parsers without numpy work
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
