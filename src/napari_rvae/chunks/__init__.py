"""Long movies in chunks of frames with dask: detection, probability maps, windows and encoding.

Each chunk of frames is one task (read → work → write), so memory stays bounded by a few chunks
whatever the movie's length; the tasks run on local processes (default), local threads or a
``dask.distributed`` cluster, with the same results as the in-memory functions. Sites and latents
go to folders of Parquet partitions (:mod:`.store`), maps to zarr. No Qt.
"""

from .graph import SCHEDULERS, ChunkSettings, frame_ranges
from .steps import atom_maps_chunked, detect_atoms_chunked, encode_sites_chunked, run_record
from .store import open_frames, read_partitions

__all__ = [
    "SCHEDULERS",
    "ChunkSettings",
    "atom_maps_chunked",
    "detect_atoms_chunked",
    "encode_sites_chunked",
    "frame_ranges",
    "open_frames",
    "read_partitions",
    "run_record",
]
