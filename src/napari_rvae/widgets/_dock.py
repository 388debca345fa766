"""What every napari-rvae dock shares: the real viewer and its workflow, one tab stack, a progress bar.

Docks opened one by one from napari's Plugins menu each get a dock area of their
own, stacked vertically: seven of them made the window taller than the screen.
An :class:`RvaeDock` that is shown next to another napari-rvae dock therefore
joins it as a tab (in the order of the workflow), so the plugin takes one dock's
height however many of its docks are open; the Workflow panel holds them all as
tabs of one dock from the start.
"""

from __future__ import annotations

import weakref

from qtpy.QtCore import QEvent, QSize, Qt, QTimer
from qtpy.QtWidgets import QDockWidget, QLabel, QMainWindow, QProgressBar, QSizePolicy, QWidget

from ._state import unwrap, workflow

_LIVE: list = []  # weak references to the docks, oldest first


class RvaeDock(QWidget):
    """Base of the docks: ``self.viewer`` is the real viewer, ``self.flow`` its workflow state."""

    dock_name = ""
    MIN_WIDTH = 330

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = unwrap(napari_viewer)
        self.flow = workflow(self.viewer)
        self.setMinimumWidth(self.MIN_WIDTH)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self._stacked = False
        _LIVE[:] = [ref for ref in _LIVE if ref() is not None]
        _LIVE.append(weakref.ref(self))

    # the settings a project keeps; docks override
    def dock_state(self) -> dict:
        return {}

    def restore_state(self, state: dict) -> None:
        pass

    def event(self, event) -> bool:
        # napari puts the dock into its QDockWidget after building it: join the stack once that is done
        if event.type() == QEvent.Type.ParentChange and not self._stacked:
            QTimer.singleShot(0, self._join_stack)
        return super().event(event)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        self._join_stack()

    def _join_stack(self) -> None:
        if self._stacked:
            return
        try:
            if dock_widget_of(self) is None:
                return
            self._stacked = True
            join_tab_stack(self)
        except RuntimeError:  # a window being torn down
            pass


def dock_widget_of(widget: QWidget) -> QDockWidget | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def join_tab_stack(dock: RvaeDock) -> None:
    """Tabify ``dock``'s QDockWidget onto the oldest other napari-rvae dock of its window (if any),
    so however many docks are opened, in whatever order, they end up as tabs of one stack."""
    mine = dock_widget_of(dock)
    if mine is None or mine.isFloating():
        return
    window = mine.parentWidget()
    if not isinstance(window, QMainWindow):
        return
    for ref in list(_LIVE):
        other = ref()
        if other is None or other is dock:
            continue
        try:
            holder = dock_widget_of(other)
        except RuntimeError:
            continue
        if holder is None or holder.parentWidget() is not window or holder.isFloating() or holder.isHidden():
            continue
        if holder is mine:
            return  # the oldest napari-rvae dock here is our own: the others join us
        if window.dockWidgetArea(holder) != window.dockWidgetArea(mine):
            continue
        window.tabifyDockWidget(holder, mine)
        mine.show()
        mine.raise_()
        return


class StatusLabel(QLabel):
    """A word-wrapped status line that is never lower than ``lines`` lines of text.

    A dock's status grows from nothing to one line and from one line to two as a job starts
    ("windows cut…; training…"); each change of its height re-laid the dock out, resized its
    plot and repainted the whole window (beside napari's canvas in software OpenGL, 20–30 ms a
    paint). Messages of up to ``lines`` lines now change no layout; longer ones still grow."""

    def __init__(self, text: str = "", lines: int = 2, parent=None):
        super().__init__(text, parent)
        self.setWordWrap(True)
        self._lines = int(lines)

    def _floor(self) -> int:
        margins = self.contentsMargins()
        text = self.fontMetrics().boundingRect(0, 0, 10_000, 10_000, int(Qt.AlignLeft | Qt.TextWordWrap),
                                               "\n".join(["Mg"] * self._lines))
        return text.height() + margins.top() + margins.bottom() + 2 * self.margin()

    def heightForWidth(self, width: int) -> int:
        return max(super().heightForWidth(width), self._floor())

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        return QSize(hint.width(), max(hint.height(), self._floor()))

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        return QSize(hint.width(), max(hint.height(), self._floor()))


def progress_bar(*jobs) -> QProgressBar:
    """A determinate progress bar driven by the jobs' ``progressed`` (no busy animation: it would
    repaint the window many times a second), hidden while they are idle."""
    bar = QProgressBar()
    bar.setMaximumHeight(14)
    bar.setTextVisible(True)
    # hidden, it keeps its place: showing it then repaints the bar only, not the whole dock's layout
    # (a re-layout of a dock with plots, in a window holding napari's OpenGL canvas, cost ~200 ms)
    policy = bar.sizePolicy()
    policy.setRetainSizeWhenHidden(True)
    bar.setSizePolicy(policy)
    bar.setVisible(False)

    def update(job, done: int, total: int) -> None:
        try:
            if not bar.isVisible():
                bar.setVisible(True)
            # QProgressBar.setValue repaints at once; in a window holding napari's OpenGL canvas that
            # is a whole-window composition outside the event loop's own paint (30–55 ms per epoch
            # under software OpenGL): paint with the next event-loop turn instead, with the rest
            bar.setUpdatesEnabled(False)
            bar.setRange(0, max(total, done, 1))
            bar.setValue(done)
            bar.setFormat(f"{job.name}: %v / %m" if total else f"{job.name}: step %v")
            bar.setUpdatesEnabled(True)
            bar.update()
        except RuntimeError:
            pass

    def hide() -> None:
        try:
            if not any(job.running for job in jobs):
                bar.setVisible(False)
        except RuntimeError:
            pass

    for job in jobs:
        job.progressed.connect(lambda done, total, job=job: update(job, done, total))
        job.finished.connect(hide)
    return bar
