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

import copy
import math
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

    status: str = "idle"  # idle | running | stopped | finished | diverged
    epoch: int = 0
    history: list = field(default_factory=list)
    stop_requested: bool = False

    def request_stop(self) -> None:
        """Ask the running loop to stop before its next batch."""
        self.stop_requested = True


#: an epoch whose training loss is this many times the best one so far has diverged (losses are ≥ 0)
EXPLOSION = 1e4


class TrainingDiverged(ValueError):
    """The loss (or the weights) stopped being finite. The trainer's model and optimizer were
    put back to the end of the last epoch that finished with finite values (``epoch``)."""

    def __init__(self, message: str, epoch: int):
        super().__init__(message)
        self.epoch = epoch


def _finite_number(value, name: str, *, low: float | None = None, low_open: bool = False, high: float | None = None):
    number = float(value)
    if not math.isfinite(number) or (low is not None and (number <= low if low_open else number < low)) or (
            high is not None and number > high):
        bound = []
        if low is not None:
            bound.append(f"{'>' if low_open else '≥'} {low:g}")
        if high is not None:
            bound.append(f"≤ {high:g}")
        raise ValueError(f"{name} must be a finite number {' and '.join(bound)}, got {value}")
    return number


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
    checkpoint : (tensors, meta), optional
        What :meth:`checkpoint` returned when the model was saved: restores Adam's moments
        and the random generator, so a resumed run continues exactly where it stopped.
    distributed : DistributedRun, optional
        Train as one rank of a ``torchrun`` job (:mod:`.distributed`): this rank's shard of
        each epoch, ``batch_size / W`` windows per step, gradients averaged over ranks;
        the statistics are the global ones.

    A loss or weight that stops being finite, or an epoch whose loss is :data:`EXPLOSION`
    times the best epoch's, ends :meth:`run` with :class:`TrainingDiverged` after the
    model and the optimizer are put back to the last good epoch.
    """

    def __init__(self, model: InvariantVAE, windows, *, classes=None, test_fraction: float = 0.15,
                 batch_size: int = 100, lr: float = 1e-3, seed: int = 0, device: str = "auto",
                 threads: int | None = None, leave_core_for_gui: bool = False, pixel_fraction: float = 1.0,
                 micro_batch: int | None = None, fused: bool = True, chunk: int = 2,
                 state: TrainState | None = None, checkpoint: tuple[dict, dict] | None = None,
                 distributed=None):
        cfg = model.config
        x = np.asarray(windows, dtype=np.float32)
        if x.shape[1:] != cfg.window:
            raise ValueError(f"windows: the model expects windows of shape {cfg.window}, got {x.shape[1:]}")
        if not np.isfinite(x).all():
            raise ValueError("windows: contain NaN or infinite values; cut them with nan='drop'")
        if cfg.likelihood == "bernoulli":
            check_bernoulli_data(x)
        test_fraction = _finite_number(test_fraction, "test_fraction", low=0.0)
        if not test_fraction < 1:
            raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number ≥ 1, got {batch_size}")
        lr = _finite_number(lr, "lr (learning rate)", low=0.0, low_open=True)
        pixel_fraction = _finite_number(pixel_fraction, "pixel_fraction", low=0.0, low_open=True, high=1.0)
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
        if checkpoint is not None:
            self.restore_checkpoint(*checkpoint)
        if distributed is not None and micro_batch:
            raise ValueError("micro_batch cannot be combined with distributed training")
        self.distributed = distributed
        self._ddp = None if distributed is None else distributed.wrap(self)  # the step loss, gradients averaged
        self._good = None  # (epoch, model, optimizer, generator) at the end of the last finite epoch

    # ------------------------------------------------------------ checkpoint
    def checkpoint(self) -> tuple[dict, dict]:
        """The optimizer and random-generator state as ``(tensors, meta)``: tensors for a
        safetensors file, ``meta`` plain JSON (never pickle)."""
        state = self.optimizer.state_dict()
        tensors, scalars = {}, {}
        for index, values in state["state"].items():
            for key, value in values.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer.{index}.{key}"] = value.detach().cpu()
                else:
                    scalars[f"{index}.{key}"] = value
        tensors["generator"] = self.generator.get_state()
        groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
        meta = {"optimizer": "Adam", "param_groups": groups, "scalars": scalars, "device": self.device.type,
                "n_parameters": len(list(self.model.parameters()))}
        return tensors, meta

    def restore_checkpoint(self, tensors: dict, meta: dict) -> None:
        """Put back what :meth:`checkpoint` saved; ``ValueError`` when it does not fit this model."""
        params = list(self.model.parameters())
        try:
            if meta.get("optimizer") != "Adam" or int(meta.get("n_parameters", -1)) != len(params):
                raise ValueError("it was saved for another model")
            groups = [dict(g, betas=tuple(g["betas"])) for g in meta["param_groups"]]
            state: dict = {}
            for name, value in tensors.items():
                if not name.startswith("optimizer."):
                    continue
                _, index, key = name.split(".", 2)
                state.setdefault(int(index), {})[key] = value
            for key, value in (meta.get("scalars") or {}).items():
                index, name = key.split(".", 1)
                state.setdefault(int(index), {})[name] = value
            for index, values in state.items():
                if not 0 <= index < len(params):
                    raise ValueError(f"state for parameter {index} of {len(params)}")
                for key in ("exp_avg", "exp_avg_sq"):
                    if key in values and tuple(values[key].shape) != tuple(params[index].shape):
                        raise ValueError(f"parameter {index} has shape {tuple(params[index].shape)}, "
                                         f"the stored moments {tuple(values[key].shape)}")
                    if key in values and not bool(torch.isfinite(values[key]).all()):
                        raise ValueError("the stored moments hold NaN or infinite values")
            self.optimizer.load_state_dict({"state": state, "param_groups": groups})
            generator = tensors.get("generator")
            if generator is not None and meta.get("device", "cpu") == self.device.type:
                self.generator.set_state(generator.to(torch.uint8))
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as err:
            raise ValueError(f"the stored optimizer state cannot be used ({err})") from None
        for group in self.optimizer.param_groups:  # a learning rate given now wins over the stored one
            group["lr"] = self.lr

    def _snapshot(self) -> None:
        self._good = (self.state.epoch, copy.deepcopy(self.model.state_dict()),
                      copy.deepcopy(self.optimizer.state_dict()), self.generator.get_state())

    def _diverged(self, what: str, epoch_now: int) -> TrainingDiverged:
        epoch, weights, optimizer, generator = self._good
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(optimizer)
        self.generator.set_state(generator)
        self.state.status = "diverged"
        self.state.stop_requested = False
        kept = f"the model of epoch {epoch} was kept" if epoch else "the model was put back to its untrained start"
        return TrainingDiverged(
            f"training diverged in epoch {epoch_now}: {what}; {kept}. Lower the learning rate (now {self.lr:g}) or β, "
            "or check the windows", epoch)

    def _weights_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.model.parameters())

    # ------------------------------------------------------------------ loop
    def run(self, epochs: int) -> Iterator[dict]:
        """Train ``epochs`` more epochs, yielding per-epoch statistics.

        Each dict has ``epoch`` (epochs done in total), ``train_loss``,
        ``train_recon``, ``train_kl``, ``test_loss``, ``test_recon``,
        ``test_kl`` (per window), ``beta``, ``capacity``, ``seconds``,
        ``samples_per_s`` and ``stopped``.
        """
        if int(epochs) != epochs or epochs < 0:
            raise ValueError(f"epochs must be a whole number ≥ 0, got {epochs}")
        state = self.state
        if state.stop_requested:  # Stop pressed before this run began: honour it, ready for Continue
            state.stop_requested = False
            state.status = "stopped"
            return
        state.status = "running"
        self._snapshot()
        for _ in range(int(epochs)):
            stats = self._epoch(state.epoch)
            checked = ("train_loss", "train_recon", "train_kl") + (("test_loss",) if len(self.test_x) else ())
            if not all(math.isfinite(stats[k]) for k in checked):
                raise self._diverged(f"the loss became {stats['train_loss']:g} (test {stats['test_loss']:g})",
                                     state.epoch + 1)
            if not self._weights_finite():
                raise self._diverged("the weights became NaN or infinite", state.epoch + 1)
            best = min((h["train_loss"] for h in state.history if math.isfinite(h.get("train_loss", math.nan))),
                       default=None)
            if best is not None and stats["train_loss"] > EXPLOSION * max(best, 1e-3):
                raise self._diverged(f"the loss exploded from {best:.4g} to {stats['train_loss']:.4g}", state.epoch + 1)
            if not stats["stopped"]:
                state.epoch += 1
            stats["epoch"] = state.epoch
            state.history.append(stats)
            self._snapshot()
            yield stats
            if stats["stopped"] or state.stop_requested:
                state.stop_requested = False
                state.status = "stopped"
                self._standardise()
                return
        state.stop_requested = False
        state.status = "finished"
        self._standardise()

    def _standardise(self) -> None:
        """With ``config.standardise_latents``: rescale the content latents so every window (train and
        test) is encoded with the prior's mean and variance (:mod:`.standardise`; exact, the model's
        windows do not change)."""
        if not getattr(self.model.config, "standardise_latents", False):
            return
        from .standardise import standardise_latents

        windows = torch.cat([self.train_x, self.test_x]).detach().cpu().numpy()
        if self.threads is None:
            standardise_latents(self.model, windows)
        else:
            with torch_thread_limit(self.threads):
                standardise_latents(self.model, windows)
        self._snapshot()

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
        n, dist, batch = len(self.train_x), self.distributed, self.batch_size
        step = self._loss if self._ddp is None else self._ddp
        if dist is None:
            perm = torch.randperm(n, generator=self.generator, device=self.device)
        else:  # this rank's shard, in steps of its share of the batch
            perm, batch = dist.epoch_order(n, epoch, self.seed, self.generator), dist.rank_batch(batch)
        n_pix = cfg.n_pixels
        n_sub = max(1, int(round(self.pixel_fraction * n_pix)))
        model.train()
        sums = np.zeros(3)
        done, stopped = 0, False
        start = time.perf_counter()
        for s in range(0, len(perm), batch):
            if self.state.stop_requested and dist is None:  # ranks stop together or not at all
                stopped = True
                break
            idx = perm[s : s + batch]
            pixels = None
            if n_sub < n_pix:
                pixels = torch.randperm(n_pix, generator=self.generator, device=self.device)[:n_sub]
            self.optimizer.zero_grad(set_to_none=True)
            pieces = [idx] if not self.micro_batch else list(idx.split(int(self.micro_batch)))
            for piece in pieces:
                total, r, k = step(self.train_x[piece], None if self.train_c is None else self.train_c[piece],
                                   beta, capacity, pixels, n_sub, self.generator)
                value = total.item()
                if not math.isfinite(value) and dist is None:  # ranks see it together in the epoch's sums
                    raise self._diverged(f"the loss became {value:g} at window {s + 1} of {n}", epoch + 1)
                (total * (len(piece) / len(idx))).backward()
                sums += np.array([value, r.item(), k.item()]) * len(piece)
            self.optimizer.step()
            done += len(idx)
        seconds = time.perf_counter() - start
        test = self.evaluate(beta, capacity) if dist is None or dist.is_main else None
        if dist is not None:
            sums, done, test = dist.combine(sums, done, test)
        train = sums / max(done, 1)
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
