"""Synchronous data-parallel training over processes started by ``torchrun``.

Each process (rank) holds a full copy of the model and of the windows, trains on its own
shard of every epoch (:class:`torch.utils.data.distributed.DistributedSampler`, reshuffled
each epoch with the run's seed) and takes part in every step: the model is wrapped in
:class:`torch.nn.parallel.DistributedDataParallel`, which averages the gradients of all ranks
before each optimizer step, so every rank applies the same update and the models stay equal.

Equal-epoch semantics: with ``W`` ranks each rank sees ``1/W`` of the windows per epoch in
batches of ``batch / W`` windows, so the global batch, the number of steps per epoch and the
loss curve are those of one process with ``batch`` (within the noise of the sampling).
The per-epoch losses are summed over ranks (the printed curve is the global one); the test
loss is computed by rank 0, which alone writes the model folder.

Usage (see ``docs/distributed-training.md``)::

    torchrun --nproc-per-node 2 -m napari_rvae.cli train windows.npy -o model --distributed
"""

from __future__ import annotations

import gc
import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
from torch import distributed as dist

#: what torchrun sets for every process it starts
ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
LAUNCH = "torchrun --nproc-per-node N -m napari_rvae.cli train ... --distributed"


@dataclass
class DistributedRun:
    """This process's place in a ``torchrun`` job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0 prints, validates and writes the model folder."""
        return self.rank == 0

    def rank_batch(self, batch: int) -> int:
        """Windows per rank and step: the global ``batch`` shared by the ranks (at least 1)."""
        return max(1, int(round(batch / self.world_size)))

    def epoch_order(self, n: int, epoch: int, seed: int, generator: torch.Generator) -> torch.Tensor:
        """This rank's training indices (into ``0 … n−1``) for ``epoch``, in batch order.

        Every rank shuffles the same way (``seed``, ``epoch``) and takes every ``W``-th index;
        the shards have equal lengths (padded by repeating windows, at most ``W − 1``) so all
        ranks take the same number of steps. ``generator`` (the sampling noise) is reseeded
        from ``(seed, epoch, rank)``: each rank draws its own noise, and a resumed run draws
        what the uninterrupted one would have.
        """
        sampler = torch.utils.data.distributed.DistributedSampler(
            range(n), num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=seed, drop_last=False)
        sampler.set_epoch(epoch)
        state = np.random.SeedSequence([seed, epoch, self.rank]).generate_state(2, dtype=np.uint32)
        generator.manual_seed(int(state[0]) << 32 | int(state[1]))
        return torch.as_tensor(list(sampler), dtype=torch.long, device=generator.device)

    def wrap(self, trainer) -> "torch.nn.Module":
        """The trainer's step loss as a DistributedDataParallel module: calling it returns
        ``(total, reconstruction, kl)`` and its backward averages the gradients over ranks."""
        from torch.nn.parallel import DistributedDataParallel

        import inspect

        ids = [self.device.index] if self.device.type == "cuda" else None
        # buffers (pixel grids) are constants: no broadcast each step (the option's name changed
        # in torch 2.13); static graph: every step uses the same parameters
        quiet = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                 inspect.signature(DistributedDataParallel.__init__).parameters else {"broadcast_buffers": False})
        return DistributedDataParallel(_StepLoss(trainer), device_ids=ids, static_graph=True, **quiet)

    def combine(self, sums: np.ndarray, done: int, test) -> tuple[np.ndarray, int, tuple]:
        """Training sums and windows over all ranks; rank 0's test loss for everyone."""
        local = list(sums) + [done] + (list(test) if self.is_main else [0.0, 0.0, 0.0])
        values = torch.tensor(local, dtype=torch.float64, device=self.device)
        dist.all_reduce(values)
        values = values.cpu().numpy()
        return values[:3], int(values[3]), tuple(float(v) for v in values[4:7])

    def agree(self, settings: dict, advice: str = "start every rank with the same command, input and model folder",
              ) -> None:
        """``ValueError`` naming the first setting in which a rank differs from rank 0."""
        gathered: list = [None] * self.world_size
        dist.all_gather_object(gathered, settings)
        for rank, other in enumerate(gathered[1:], start=1):
            for key in sorted(set(gathered[0]) | set(other)):
                if gathered[0].get(key) != other.get(key):
                    raise ValueError(
                        f"--distributed: rank {rank} has {key} = {other.get(key)!r}, rank 0 "
                        f"{gathered[0].get(key)!r}; {advice}")

    def on_main(self, write):
        """Run ``write()`` on rank 0 while the others wait; a failure there stops every rank
        (rank 0 re-raises it, the others raise ``ValueError`` saying so)."""
        failure, result = None, None
        if self.is_main:
            try:
                result = write()
            except Exception as err:  # noqa: BLE001 - handed to the other ranks, then re-raised
                failure = err
        box = [None if failure is None else " ".join(str(failure).split())]
        dist.broadcast_object_list(box, src=0)
        if failure is not None:
            raise failure
        if box[0] is not None:
            raise ValueError(f"rank {self.rank} stopped: rank 0 failed ({box[0]})")
        return result


class _StepLoss(torch.nn.Module):
    """The trainer's per-step loss as a module (what DistributedDataParallel wraps)."""

    def __init__(self, trainer):
        super().__init__()
        self.model = trainer.model
        self.trainer = trainer

    def forward(self, x, cls, beta, capacity, pixels, n_sub, generator):
        return self.trainer._loss(x, cls, beta, capacity, pixels, n_sub, generator)


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in ENVIRONMENT)


def start(device: str = "auto", timeout_minutes: float = 30.0) -> DistributedRun:
    """Join the ``torchrun`` job this process belongs to (gloo on CPU, NCCL on CUDA).

    ``device``: ``auto`` or ``cuda`` use GPU ``LOCAL_RANK`` when CUDA is available, else the
    CPU; ``cpu`` forces the CPU. Raises ``ValueError`` (one line saying how to launch) when
    the process was not started by torchrun.
    """
    missing = [name for name in ENVIRONMENT if name not in os.environ]
    if missing:
        raise ValueError(f"--distributed needs the environment torchrun sets ({', '.join(missing)} missing); "
                         f"launch it as `{LAUNCH}`")
    try:
        rank, world, local = (int(os.environ[name]) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError:
        raise ValueError("--distributed: RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers "
                         f"(launch with `{LAUNCH}`)") from None
    if not 0 <= rank < world:
        raise ValueError(f"--distributed: RANK {rank} is outside WORLD_SIZE {world}")
    name = (device or "auto").lower()
    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--distributed: --device must be auto, cpu or cuda (each rank takes GPU LOCAL_RANK), "
                         f"got {device!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available here; use 'auto' or 'cpu'")
    if name != "cpu" and torch.cuda.is_available():
        if local >= torch.cuda.device_count():
            raise ValueError(f"--distributed: LOCAL_RANK {local} but this node has {torch.cuda.device_count()} "
                             "GPU(s); start at most one process per GPU (--nproc-per-node)")
        where, backend = torch.device("cuda", local), "nccl"
        torch.cuda.set_device(where)
    else:
        where, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(minutes=timeout_minutes))
    return DistributedRun(rank=rank, world_size=world, local_rank=local, device=where, backend=backend)


def stop(finished: bool = True) -> None:
    """Leave the job. After a finished run every rank waits for the others first (a rank that
    tore its process group down while another still used it was seen to abort at exit); after an
    error it leaves at once, since the others may be stuck in another collective.

    The trainer and its DistributedDataParallel wrapper refer to each other (the wrapped step
    loss holds the trainer), so they outlive the training until the cyclic garbage collector
    runs, and the wrapper's reducer keeps the process group alive past ``destroy_process_group``.
    Left to the interpreter's exit, that group's worker threads were torn down while running:
    "terminate called without an active exception", SIGABRT, in about one CI run of three. They
    are collected here, while the group is still whole."""
    if dist.is_initialized():
        try:
            gc.collect()
            if finished:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def fingerprint(array) -> str:
    """Short digest of an array's bytes: ranks compare it to be sure they train on the same windows."""
    data = np.ascontiguousarray(array)
    return f"{data.dtype}{data.shape}:{hashlib.sha1(data.view(np.uint8).reshape(-1)).hexdigest()[:16]}"
