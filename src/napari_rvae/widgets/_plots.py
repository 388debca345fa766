"""Plots for the docks: napari's theme colours, plain numbers, whole-number frame/epoch axes,
and the legend under the data instead of over it.

pyqtgraph by default rescales an axis with an SI prefix ("z0 (x0.001)"), ticks a frame
axis at halves, draws on white or black whatever napari's theme, and floats the legend
over the curves. :class:`Plot` fixes the four; it is used like a ``pg.PlotWidget``
(``plot``, ``addItem``, ``clear``, ``setLabel`` … go to its plot item).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

#: curve colours (a colour-blind-friendly ten-colour cycle)
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def theme_colours(viewer=None) -> dict:
    """``background``, ``text``, ``grid`` and ``highlight`` colours (hex) of the viewer's napari theme."""
    try:
        from napari.utils.theme import get_theme

        name = getattr(viewer, "theme", None) or "dark"
        theme = get_theme(name)
        return {"background": theme.background.as_hex(), "text": theme.text.as_hex(),
                "grid": theme.foreground.as_hex(), "highlight": theme.highlight.as_hex(),
                "canvas": theme.canvas.as_hex()}
    except Exception:  # an unknown theme: napari's dark defaults
        return {"background": "#262930", "text": "#f0f1f2", "grid": "#414851", "highlight": "#6a6a6a",
                "canvas": "#000000"}


class PlainAxis(pg.AxisItem):
    """An axis that shows plain numbers (no SI-prefix rescaling of the label); with
    ``integer`` (frames, epochs) it ticks at whole numbers only."""

    def __init__(self, orientation: str, integer: bool = False, **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)
        self.integer = bool(integer)

    def set_integer(self, integer: bool) -> None:
        self.integer = bool(integer)
        self.picture = None
        self.update()

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802, N803 - pyqtgraph naming
        levels = super().tickSpacing(minVal, maxVal, size) or []
        if not self.integer:
            return levels
        out = []
        for spacing, _offset in levels:
            if spacing < 1:
                continue
            whole = float(max(1, round(spacing)))
            if all(whole != s for s, _ in out):
                out.append((whole, 0.0))
        return out or [(1.0, 0.0)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        if self.integer:
            return [str(int(round(v))) for v in values]
        return super().tickStrings(values, scale, spacing)


def IntegerAxis(orientation: str, **kwargs) -> PlainAxis:  # noqa: N802 - reads like a class
    """A :class:`PlainAxis` ticking at whole numbers."""
    return PlainAxis(orientation, integer=True, **kwargs)


def pen(k: int, width: float = 2.0):
    return pg.mkPen(PALETTE[k % len(PALETTE)], width=width)


def brush(k: int):
    return pg.mkBrush(*PALETTE[k % len(PALETTE)])


class Plot(pg.GraphicsLayoutWidget):
    """One themed plot with its legend in a row below it.

    Parameters
    ----------
    title, x, y : str
        Title and axis labels.
    integer_x, integer_y : bool
        Whole-number ticks (frames, epochs) on that axis.
    viewer : napari.Viewer, optional
        Whose theme to follow (dark by default).
    """

    def __init__(self, title: str = "", x: str = "", y: str = "", *, integer_x: bool = False,
                 integer_y: bool = False, viewer=None, min_height: int = 150) -> None:
        super().__init__()
        for name in ("addItem", "removeItem", "clear"):  # GraphicsLayoutWidget binds the layout's; ours act on the plot
            self.__dict__.pop(name, None)
        axes = {"bottom": PlainAxis("bottom", integer=integer_x), "left": PlainAxis("left", integer=integer_y)}
        # no right-click menu: building one per plot cost ~50 ms of the GUI thread each
        self.item = self.ci.addPlot(row=0, col=0, axisItems=axes, enableMenu=False)
        self.legend = pg.LegendItem(colCount=3, labelTextSize="8pt")
        self.ci.addItem(self.legend, row=1, col=0)
        self.legend.setVisible(False)
        self.ci.layout.setContentsMargins(2, 2, 14, 2)  # room for the last tick label on the right
        self.colours = theme_colours(viewer)
        self.setBackground(self.colours["background"])
        for name in ("bottom", "left"):
            axis = self.item.getAxis(name)
            axis.setPen(pg.mkPen(self.colours["text"]))
            axis.setTextPen(pg.mkPen(self.colours["text"]))
        self._title = title
        self.setTitle(title)
        if x:
            self.item.setLabel("bottom", x)
        if y:
            self.item.setLabel("left", y)
        self.setMinimumHeight(min_height)

    def set_integer_x(self, integer: bool) -> None:
        """Whole-number ticks on the horizontal axis (frames) or plain numbers (bias …)."""
        self.item.getAxis("bottom").set_integer(integer)

    def sizeHint(self):  # noqa: N802 - Qt naming
        """As tall as its minimum: a plot takes the room a dock has left (it expands), but never asks for
        more. pyqtgraph's hint (~480 px) made a dock's scroll area size its content to the hint at the
        first re-layout (a status line turning to two lines as training starts): the content grew by
        ~200 px, a scroll bar appeared and the window was painted three times over (40–60 ms)."""
        hint = super().sizeHint()
        hint.setHeight(self.minimumHeight())
        return hint

    def settle(self) -> None:
        """Fit the auto range and the axes to new data now, not while painting: pyqtgraph fits them
        lazily at the start of the next paint, which changes the axes and asks for a second paint of the
        whole window right after the first (two compositions per update, ~22 ms each beside napari's
        OpenGL canvas in software GL)."""
        self.item.getViewBox().prepareForPaint()

    # ---------------------------------------------------------------- plot item API
    def setTitle(self, title: str, **kwargs) -> None:  # noqa: N802
        self._title = title
        self.item.setTitle(title, color=self.colours["text"], size=kwargs.get("size", "9pt"))

    def plot(self, *args, name: str | None = None, **kwargs):
        curve = self.item.plot(*args, **kwargs)
        if name:
            self._to_legend(curve, name)
        self.settle()
        return curve

    def addItem(self, item, *args, name: str | None = None, **kwargs) -> None:  # noqa: N802
        self.item.addItem(item, *args, **kwargs)
        label = name or (item.name() if hasattr(item, "name") and callable(item.name) else None)
        if label:
            self._to_legend(item, label)
        self.settle()

    def removeItem(self, item) -> None:  # noqa: N802
        self.item.removeItem(item)
        self.legend.removeItem(item)

    def clear(self) -> None:
        self.item.clear()
        self.legend.clear()
        self.legend.setVisible(False)

    def addLegend(self, *args, **kwargs):  # noqa: N802 - the legend is always below the plot
        return self.legend

    def _to_legend(self, item, label: str) -> None:
        self.legend.addItem(item, label)
        for sample, text in self.legend.items:
            text.setText(text.text, color=self.colours["text"])
        self.legend.setVisible(True)

    def getPlotItem(self):  # noqa: N802 - as pg.PlotWidget
        return self.item

    # GraphicsView has methods of these names that act on the whole scene: ours act on the plot
    def setXRange(self, *args, **kwargs):  # noqa: N802
        return self.item.setXRange(*args, **kwargs)

    def setYRange(self, *args, **kwargs):  # noqa: N802
        return self.item.setYRange(*args, **kwargs)

    def setRange(self, *args, **kwargs):  # noqa: N802
        return self.item.setRange(*args, **kwargs)

    def autoRange(self, *args, **kwargs):  # noqa: N802
        return self.item.autoRange(*args, **kwargs)

    def setAspectLocked(self, *args, **kwargs):  # noqa: N802
        return self.item.setAspectLocked(*args, **kwargs)

    def setLabel(self, *args, **kwargs):  # noqa: N802
        return self.item.setLabel(*args, **kwargs)

    def __getattr__(self, name):
        # setLabel, setXRange, setYRange, autoRange, setAspectLocked, getAxis, getViewBox … of the plot item
        item = self.__dict__.get("item")
        if item is None:
            raise AttributeError(name)
        return getattr(item, name)


def finite_range(values) -> tuple[float, float] | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    return float(values.min()), float(values.max())


class LossPlot(Plot):
    """Loss per epoch: train and test totals, reconstruction and KL (per window)."""

    CURVES = {"train_loss": ("train", 0), "test_loss": ("test", 1), "train_recon": ("recon", 2),
              "train_kl": ("KL", 3)}

    def __init__(self, curves: dict | None = None, viewer=None) -> None:
        super().__init__("", "epoch", "loss", integer_x=True, viewer=viewer, min_height=150)
        if curves is not None:
            self.CURVES = dict(curves)
        self.curves = {k: self.plot([], [], pen=pen(c), name=n) for k, (n, c) in self.CURVES.items()}
        self.history: list[dict] = []

    def set_history(self, history: list[dict]) -> None:
        self.history = list(history)
        epochs = [h.get("epoch", i + 1) for i, h in enumerate(self.history)]
        for key, curve in self.curves.items():
            curve.setData(epochs, [h.get(key, np.nan) for h in self.history])
        self.settle()

    def add(self, stats: dict) -> None:
        self.set_history(self.history + [stats])
