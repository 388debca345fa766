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

import inspect
import sys
import time
from typing import Any, Callable

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import QObject, QThreadPool, QTimer, Signal

from .._compute import with_torch_thread_limit
from ._state import load_torch_in_background, wait_for_torch


STEP_MS = 15  # pause between the steps of showing a result: the event loop (and napari's paint) runs between
SWITCH_INTERVAL_S = 0.001  # Python's thread switch interval while a job runs (default 0.005)
_RUNNING_JOBS: set = set()
_DEFAULT_SWITCH = sys.getswitchinterval()


def _job_started(job) -> None:
    """While any job runs, Python hands the lock between threads every 1 ms instead of 5: the GUI
    thread, waiting for it behind a worker, gets it sooner (fewer 10–20 ms hiccups)."""
    _RUNNING_JOBS.add(id(job))
    sys.setswitchinterval(min(SWITCH_INTERVAL_S, _DEFAULT_SWITCH))


def _job_ended(job) -> None:
    _RUNNING_JOBS.discard(id(job))
    if not _RUNNING_JOBS:
        sys.setswitchinterval(_DEFAULT_SWITCH)


def warm_up_torch() -> None:
    """Start loading torch in the background (see :func:`._state.load_torch_in_background`)."""
    load_torch_in_background()


def _in_worker(function: Callable, uses_torch: bool) -> Callable:
    """``function`` wrapped to run in the worker thread: wait for torch (loaded in the
    background, never in the GUI thread), then run each step with all cores but one for
    torch, the process's count restored after every step (:func:`with_torch_thread_limit`:
    other plugins and the user's notebook share that setting)."""
    limited = with_torch_thread_limit(function, leave_core_for_gui=True) if uses_torch else function
    if inspect.isgeneratorfunction(function):
        def job(*args, **kwargs):
            if uses_torch:
                wait_for_torch()
            return (yield from limited(*args, **kwargs))
    else:
        def job(*args, **kwargs):
            if uses_torch:
                wait_for_torch()
            return limited(*args, **kwargs)
    job.__name__ = getattr(function, "__name__", "job")
    return job


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
        Start loading torch in the background now; the job waits for it in its
        own thread, so neither ever freezes the GUI.

    Progress is shown by the dock (``progressed(done, total)``), not by napari's
    activity bar: its animation repaints the whole window (with its OpenGL canvas)
    every few milliseconds, which on 2 cores tripled the GUI's event-loop gaps
    while a job ran.
    """

    started = Signal()
    finished = Signal()
    errored = Signal(object)
    progressed = Signal(int, int)  # yields so far, expected total (0 = unknown)

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
            load_torch_in_background()
        self.uses_torch = uses_torch
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
        self._done, self._total = 0, int(total)
        worker = create_worker(_in_worker(function, self.uses_torch), *args, _ignore_errors=True, **kwargs)
        # napari relays worker errors with a raw traceback; we say what failed instead (once)
        for signal, relay in ((worker.errored, "_relay_error"), (worker.warned, "_relay_warning")):
            try:
                signal.disconnect(getattr(worker, relay))
            except (AttributeError, TypeError, RuntimeError):
                pass
        if hasattr(worker, "yielded"):
            worker.yielded.connect(self._count)
        if self._on_yield is not None and hasattr(worker, "yielded"):
            worker.yielded.connect(self._guard(self._on_yield))
        self._steps = None
        self._worker_done = False
        if self._on_return is not None:
            worker.returned.connect(self._guard(self._returned))
        worker.errored.connect(self._report_error)
        worker.warned.connect(self._report_warning)
        worker.finished.connect(self._on_worker_finished)
        self.worker = worker
        self._active = True
        _job_started(self)
        if self.parent() is not None:  # closing the dock stops its job
            self.parent().destroyed.connect(lambda *_: self._abandon(worker))
        start_in_plugin_pool(worker)
        self.started.emit()
        self.progressed.emit(0, self._total)
        return worker

    def set_total(self, total: int) -> None:
        """The number of yields expected, once the job knows it (e.g. epochs that follow from the windows)."""
        self._total = int(total)
        self.progressed.emit(self._done, self._total)

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
    def _count(self, *_value) -> None:
        self._done += 1
        try:
            self.progressed.emit(self._done, self._total)
        except RuntimeError:
            pass

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

    def _returned(self, value) -> None:
        """Show the job's result. An ``on_return`` that is a generator function shows it in steps,
        one per event-loop turn (each ``yield`` hands the GUI back, e.g. between two layers
        added), and the job counts as finished after its last step."""
        steps = self._on_return(value)
        if inspect.isgenerator(steps):
            self._steps = steps
            QTimer.singleShot(STEP_MS, self._next_step)

    def _next_step(self) -> None:
        steps = self._steps
        if steps is None:
            return
        try:
            next(steps)
        except StopIteration:
            self._steps = None
        except RuntimeError as err:  # the dock was closed while showing
            self._steps = None
            if "has been deleted" not in str(err):
                self._report_error(err)
        except Exception as err:
            self._steps = None
            self._report_error(err)
        if self._steps is not None:
            QTimer.singleShot(STEP_MS, self._next_step)
        elif self._worker_done:
            self._finished()

    def _on_worker_finished(self) -> None:
        self._worker_done = True
        self.worker_done_at = time.perf_counter()  # the benchmark splits "running" from "showing results"
        if self._steps is None:
            self._finished()

    def _finished(self) -> None:
        self._active = False
        _job_ended(self)
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
