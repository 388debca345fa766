"""The training loop shared by the CLI, the benchmark and the napari dock.

:class:`Trainer` keeps the data split, the Adam optimizer and a
:class:`TrainState`; :meth:`Trainer.run` is a generator yielding one
statistics dict per epoch, so a napari ``thread_worker`` can simply iterate
it (and the dock only displays ``state``). ``state.request_stop()`` is
honoured before the next batch; calling :meth:`Trainer.run` again continues
training with the optimizer state kept.

Example
-------
>>> trainer = Trainer(build_model(VAEConfig(window=(28, 28))), windows, seed=0)
>>> for stats in trainer.run(epochs=5):
...     print(stats["epoch"], stats["train_loss"], stats["test_loss"])
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from .._compute import select_device, torch_thread_limit, torch_threads
from .losses import check_bernoulli_data, kl_terms, total_loss
from .models import InvariantVAE


@dataclass
class TrainState:
    """What a GUI shows and controls: status, epochs done, history, stop flag."""

    status: str = "idle"  # idle | running | stopped | finished
    epoch: int = 0
    history: list = field(default_factory=list)
    stop_requested: bool = False

    def request_stop(self) -> None:
        """Ask the running loop to stop before its next batch."""
        self.stop_requested = True


class Trainer:
    """Train an :class:`InvariantVAE` on windows.

    Parameters
    ----------
    model : InvariantVAE
    windows : array (N, *window), float32
        Training windows (already normalised).
    classes : array (N,), int, optional
        Class of each window, for a class-conditional model.
    test_fraction : float
        Share of windows held out for the test loss (0 ≤ f < 1; papers 0.15).
    batch_size : int
    lr : float
        Adam learning rate.
    seed : int
        Seeds the split, the shuffling and the sampling noise: same seed and
        data give the same model on CPU.
    device : str
        ``"auto"`` (CUDA, MPS, then CPU), ``"cpu"``, ``"cuda"``…
    threads : int, optional
        CPU threads for torch; default all cores, or all but one with
        ``leave_core_for_gui=True``.
    pixel_fraction : float
        ``1.0`` (default) evaluates the decoder at every pixel. Below 1, each
        step evaluates a random subset of pixels (shared by the batch) and
        rescales the reconstruction term: an unbiased estimate that cuts the
        decoder cost in proportion (spatial decoders only).
    micro_batch : int, optional
        Split each batch into pieces of this size, accumulating gradients
        (identical update, smaller activation tensors).
    fused : bool
        Evaluate spatial decoders with the cache-chunked fused loss (:mod:`.fused`);
        same arithmetic, faster on CPU. ``chunk`` is the number of windows per piece.
    state : TrainState, optional
        Continue from an existing state (e.g. the history of a loaded model).
    """

    def __init__(self, model: InvariantVAE, windows, *, classes=None, test_fraction: float = 0.15,
                 batch_size: int = 100, lr: float = 1e-3, seed: int = 0, device: str = "auto",
                 threads: int | None = None, leave_core_for_gui: bool = False, pixel_fraction: float = 1.0,
                 micro_batch: int | None = None, fused: bool = True, chunk: int = 2,
                 state: TrainState | None = None):
        cfg = model.config
        x = np.asarray(windows, dtype=np.float32)
        if x.shape[1:] != cfg.window:
            raise ValueError(f"windows: the model expects windows of shape {cfg.window}, got {x.shape[1:]}")
        if not np.isfinite(x).all():
            raise ValueError("windows: contain NaN or infinite values; cut them with nan='drop'")
        if cfg.likelihood == "bernoulli":
            check_bernoulli_data(x)
        if not 0 <= test_fraction < 1:
            raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
        if batch_size < 1 or lr <= 0:
            raise ValueError("batch_size must be ≥ 1 and lr > 0")
        if not 0 < pixel_fraction <= 1:
            raise ValueError(f"pixel_fraction must be in (0, 1], got {pixel_fraction}")
        if cfg.n_classes and classes is None:
            raise ValueError("this model is class-conditional: pass classes (one per window)")
        self.device = select_device(device)
        self.threads = None  # torch threads while an epoch runs (restored after each, see torch_thread_limit)
        if self.device.type == "cpu":
            self.threads = int(threads) if threads else torch_threads(leave_core_for_gui)
        self.model = model.to(self.device)
        self.batch_size, self.lr, self.seed = int(batch_size), float(lr), int(seed)
        self.pixel_fraction, self.micro_batch = float(pixel_fraction), micro_batch
        self.fused, self.chunk = bool(fused), int(chunk)
        self.state = state or TrainState()

        order = np.random.default_rng(seed).permutation(len(x))
        n_test = int(round(test_fraction * len(x)))
        if len(x) - n_test < 1:
            raise ValueError(f"windows: {len(x)} windows leave nothing to train on")
        self.test_index, self.train_index = np.sort(order[:n_test]), np.sort(order[n_test:])
        data = torch.from_numpy(x)
        self.train_x = data[self.train_index].to(self.device)
        self.test_x = data[self.test_index].to(self.device)
        cls = None if classes is None else torch.as_tensor(np.asarray(classes), dtype=torch.long)
        self.train_c = None if cls is None else cls[self.train_index].to(self.device)
        self.test_c = None if cls is None else cls[self.test_index].to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)

    # ------------------------------------------------------------------ loop
    def run(self, epochs: int) -> Iterator[dict]:
        """Train ``epochs`` more epochs, yielding per-epoch statistics.

        Each dict has ``epoch`` (epochs done in total), ``train_loss``,
        ``train_recon``, ``train_kl``, ``test_loss``, ``test_recon``,
        ``test_kl`` (per window), ``beta``, ``capacity``, ``seconds``,
        ``samples_per_s`` and ``stopped``.
        """
        if epochs < 0:
            raise ValueError(f"epochs must be ≥ 0, got {epochs}")
        state = self.state
        if state.stop_requested:  # Stop pressed before this run began: honour it, ready for Continue
            state.stop_requested = False
            state.status = "stopped"
            return
        state.status = "running"
        for _ in range(int(epochs)):
            stats = self._epoch(state.epoch)
            if not stats["stopped"]:
                state.epoch += 1
            stats["epoch"] = state.epoch
            state.history.append(stats)
            yield stats
            if stats["stopped"] or state.stop_requested:
                state.stop_requested = False
                state.status = "stopped"
                return
        state.stop_requested = False
        state.status = "finished"

    def fit(self, epochs: int) -> list:
        """Run ``epochs`` epochs and return their statistics."""
        return list(self.run(epochs))

    def _epoch(self, epoch: int) -> dict:
        if self.threads is None:
            return self._epoch_on_device(epoch)
        with torch_thread_limit(self.threads):
            return self._epoch_on_device(epoch)

    def _epoch_on_device(self, epoch: int) -> dict:
        if not (self.fused and self.device.type == "cpu" and self.model.can_fuse):
            return self._epoch_inner(epoch)
        # The fused decoder runs one thread per core itself; the remaining small ops
        # (encoder, optimizer) run single-threaded: OpenMP barriers on such small ops
        # collapse when another process is busy on a core.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._epoch_inner(epoch)
        finally:
            torch.set_num_threads(threads)

    def _epoch_inner(self, epoch: int) -> dict:
        cfg, model = self.model.config, self.model
        schedule = cfg.beta
        beta, capacity = schedule.beta(epoch), schedule.capacity(epoch)
        n = len(self.train_x)
        perm = torch.randperm(n, generator=self.generator, device=self.device)
        n_pix = cfg.n_pixels
        n_sub = max(1, int(round(self.pixel_fraction * n_pix)))
        model.train()
        sums = np.zeros(3)
        done, stopped = 0, False
        start = time.perf_counter()
        for s in range(0, n, self.batch_size):
            if self.state.stop_requested:
                stopped = True
                break
            idx = perm[s : s + self.batch_size]
            pixels = None
            if n_sub < n_pix:
                pixels = torch.randperm(n_pix, generator=self.generator, device=self.device)[:n_sub]
            self.optimizer.zero_grad(set_to_none=True)
            pieces = [idx] if not self.micro_batch else list(idx.split(int(self.micro_batch)))
            for piece in pieces:
                total, r, k = self._loss(self.train_x[piece], None if self.train_c is None else self.train_c[piece],
                                         beta, capacity, pixels, n_sub, self.generator)
                (total * (len(piece) / len(idx))).backward()
                sums += np.array([total.item(), r.item(), k.item()]) * len(piece)
            self.optimizer.step()
            done += len(idx)
        seconds = time.perf_counter() - start
        train = sums / max(done, 1)
        test = self.evaluate(beta, capacity)
        return {
            "epoch": epoch, "train_loss": float(train[0]), "train_recon": float(train[1]), "train_kl": float(train[2]),
            "test_loss": test[0], "test_recon": test[1], "test_kl": test[2], "beta": beta, "capacity": capacity,
            "seconds": seconds, "samples_per_s": done / seconds if seconds > 0 else 0.0, "stopped": stopped,
            "windows_seen": done,
        }

    def _loss(self, x, cls, beta, capacity, pixels, n_sub, generator):
        cfg = self.model.config
        z, mean, logvar = self.model.sample(x, generator)
        target = x.reshape(len(x), -1)
        scale = cfg.recon_weight  # 1/noise_sigma² for the Gaussian likelihood
        if pixels is not None:
            target, scale = target[:, pixels], scale * cfg.n_pixels / n_sub
        fused = self.fused and self.device.type == "cpu"  # the chunked path is a CPU cache optimisation
        recon = self.model.reconstruction_sum(target, z, cls, pixels, scale, fused=fused, chunk=self.chunk,
                                              workers=self.threads)
        kl = kl_terms(mean, logvar, cfg.has_angle, cfg.rotation_prior)
        return total_loss(recon / len(x), kl, beta, capacity, cfg.beta.uses_capacity)

    @torch.no_grad()
    def evaluate(self, beta: float | None = None, capacity: float | None = None, batch: int = 1000):
        """Test-set ``(total, reconstruction, kl)`` per window (NaN without a test set);
        the sampling noise is seeded, so the value is reproducible."""
        if len(self.test_x) == 0:
            return (float("nan"),) * 3
        schedule = self.model.config.beta
        beta = schedule.beta(self.state.epoch) if beta is None else beta
        capacity = schedule.capacity(self.state.epoch) if capacity is None else capacity
        self.model.eval()
        gen = torch.Generator(device=self.device).manual_seed(self.seed + 1)
        sums = np.zeros(3)
        for s in range(0, len(self.test_x), batch):
            x = self.test_x[s : s + batch]
            c = None if self.test_c is None else self.test_c[s : s + batch]
            total, r, k = self._loss(x, c, beta, capacity, None, 0, gen)
            sums += np.array([total.item(), r.item(), k.item()]) * len(x)
        self.model.train()
        return tuple(float(v) for v in sums / len(self.test_x))
