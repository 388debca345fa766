"""Worker plumbing for the docks: one background job at a time, Stop, errors as notifications.

A long job (training, prediction, encoding, interpolation) is a core
*generator function*: it does one unit of work per ``yield`` (an epoch, a
frame) and yields something the dock can display. :class:`BackgroundJob`
runs it in a napari ``thread_worker`` with a progress bar, connects the
dock's callbacks, turns exceptions into error notifications (the viewer
never dies) and leaves one core to the GUI while it runs.

Stop is cooperative: the dock passes ``stop=`` a callable that sets the core
state's stop flag (``state.stop = True`` or ``state.request_stop()``); the
core finishes its current unit cleanly and returns. Without one, the worker
is asked to quit at its next ``yield``. Continue is simply :meth:`start`
again with the same state object.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import QObject, QThreadPool, QTimer, Signal

from .._compute import with_torch_thread_limit


_TORCH_WARM = False


def warm_up_torch() -> None:
    """Load torch's lazily imported optimiser machinery now, once per process.

    The first ``torch.optim.Adam`` imports ``torch._dynamo`` (≈ 2–3 s on 2
    cores), and parts of that import hold the GIL for ~200–400 ms at a time.
    Done inside a training worker it freezes the GUI; done when a dock is
    built, training later never does.
    """
    global _TORCH_WARM
    if _TORCH_WARM:
        return
    import torch

    layer = torch.nn.Linear(2, 1)
    optimiser = torch.optim.Adam(layer.parameters())
    layer(torch.zeros(1, 2)).sum().backward()
    optimiser.step()
    _TORCH_WARM = True


class BackgroundJob(QObject):
    """Run one generator function at a time in a napari thread worker.

    Parameters
    ----------
    name : str
        What the job does, in the user's words ("Training the VAE"); used in
        the progress bar and in error messages.
    on_yield, on_return, on_finish : callable, optional
        Called in the GUI thread with each yielded value, with the returned
        value, and (no argument) when the worker ends for any reason.
    uses_torch : bool
        Warm torch up now (see :func:`warm_up_torch`) so that the job never
        freezes the GUI while it runs.
    """

    started = Signal()
    finished = Signal()
    errored = Signal(object)

    def __init__(
        self,
        name: str,
        *,
        on_yield: Callable[[Any], None] | None = None,
        on_return: Callable[[Any], None] | None = None,
        on_finish: Callable[[], None] | None = None,
        uses_torch: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if uses_torch:
            warm_up_torch()
        self.name = name
        self._on_yield = on_yield
        self._on_return = on_return
        self._on_finish = on_finish
        self.worker = None
        self._stop: Callable[[], None] | None = None
        self._active = False
        self.last_error: BaseException | None = None

    @property
    def running(self) -> bool:
        """True from :meth:`start` until the worker has finished (also while it waits for a thread)."""
        return self._active

    def start(self, function: Callable, *args, stop: Callable[[], None] | None = None, total: int = 0, **kwargs):
        """Start ``function(*args, **kwargs)`` (a generator function) in the background.

        Parameters
        ----------
        function : callable
            A core generator function (or a plain function for a one-shot job).
        stop : callable, optional
            Sets the core's stop flag; called by :meth:`stop`.
        total : int
            Number of yields expected, for the progress bar (0 = unknown).

        Returns
        -------
        worker
            The napari worker (already started); its ``finished`` signal is
            what tests wait on.
        """
        if self.running:
            raise ValueError(f"{self.name} is already running; press Stop first")
        self._stop = stop
        self.last_error = None
        # torch's thread count is set for each step of the job and restored after it
        job = with_torch_thread_limit(function, leave_core_for_gui=True)
        worker = create_worker(job, *args, _progress={"total": int(total), "desc": self.name}, _ignore_errors=True,
                               **kwargs)
        # napari relays worker errors with a raw traceback; we say what failed instead (once)
        for signal, relay in ((worker.errored, "_relay_error"), (worker.warned, "_relay_warning")):
            try:
                signal.disconnect(getattr(worker, relay))
            except (AttributeError, TypeError, RuntimeError):
                pass
        if self._on_yield is not None and hasattr(worker, "yielded"):
            worker.yielded.connect(self._guard(self._on_yield))
        if self._on_return is not None:
            worker.returned.connect(self._guard(self._on_return))
        worker.errored.connect(self._report_error)
        worker.warned.connect(self._report_warning)
        worker.finished.connect(self._finished)
        self.worker = worker
        self._active = True
        if self.parent() is not None:  # closing the dock stops its job
            self.parent().destroyed.connect(lambda *_: self._abandon(worker))
        start_in_plugin_pool(worker)
        self.started.emit()
        return worker

    def stop(self) -> None:
        """Ask the running job to stop after its current unit of work."""
        if not self.running:
            return
        if self._stop is not None:
            self._stop()
        else:
            self.worker.quit()

    def _abandon(self, worker) -> None:
        try:
            if self._stop is not None:
                self._stop()
            worker.quit()
        except RuntimeError:
            pass

    # ----------------------------------------------------------- internals
    def _guard(self, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        """Wrap a GUI callback so that its exceptions become notifications."""

        def run(value):
            try:
                callback(value)
            except RuntimeError as err:
                if "has been deleted" not in str(err):  # the dock was closed while the job ran
                    self._report_error(err)
            except Exception as err:  # a display bug must not kill the viewer
                self._report_error(err)

        return run

    def _report_error(self, err: BaseException) -> None:
        self.last_error = err
        show_error(f"{self.name} failed: {type(err).__name__}: {err}")
        try:
            self.errored.emit(err)
        except RuntimeError:  # this job's dock is gone
            pass

    def _report_warning(self, warning) -> None:
        message = warning[0] if isinstance(warning, tuple) and warning else warning
        show_warning(f"{self.name}: {message}")

    def _finished(self) -> None:
        self._active = False
        try:
            if self._on_finish is not None:
                self._on_finish()
        except Exception as err:
            self._report_error(err)
        finally:
            try:
                self.finished.emit()
            except RuntimeError:  # this job's dock is gone
                pass


_POOL: QThreadPool | None = None


def plugin_thread_pool() -> QThreadPool:
    """The plugin's own thread pool (8 threads: a slow job of one dock never queues another's).

    napari's global pool, shared by every plugin, is left as napari set it.
    """
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(8)
    return _POOL


def start_in_plugin_pool(worker) -> None:
    """Start a napari/superqt worker in :func:`plugin_thread_pool` instead of Qt's global pool.

    Mirrors ``WorkerBase.start``: the worker joins the set napari asks to quit on close.
    """
    if worker in worker._worker_set:
        raise RuntimeError("this worker is already started")
    worker._worker_set.add(worker)
    worker._finished.connect(worker._set_discard)
    plugin_thread_pool().start(worker)


def call_safely(name: str, function: Callable, *args, **kwargs):
    """Call ``function`` in the GUI thread; show an error notification instead of raising.

    Returns the function's result, or ``None`` when it raised.
    """
    try:
        return function(*args, **kwargs)
    except Exception as err:
        show_error(f"{name} failed: {type(err).__name__}: {err}")
        return None


class EventLoopGapMeter(QObject):
    """Measure how long the Qt event loop goes without running a timer.

    A 5 ms repeating timer records the time between its ticks; the largest
    gap (milliseconds) is how long the GUI was frozen at worst.
    """

    def __init__(self, interval_ms: int = 5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self.gaps_ms: list[float] = []
        self._last = 0.0

    def start(self) -> None:
        self.gaps_ms = []
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps_ms.append((now - self._last) * 1000.0)
        self._last = now

    @property
    def max_gap_ms(self) -> float:
        return max(self.gaps_ms) if self.gaps_ms else float("nan")
