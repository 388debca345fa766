"""The pyqtgraph latent scatter: fast drawing, overlays, click / hover / lasso / rectangle.

Knows nothing about napari or models: it shows ``(x, y)`` with per-point
colours and reports user gestures as signals in plot (data) coordinates.
Selections, the current frame and the clicked point are drawn as small
overlay items, so no gesture ever recolours the whole scatter.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import QPointF, QRectF, Qt, QTimer, Signal

from skimage.measure import points_in_poly

from ._fast_scatter import FastScatterItem, pack_argb
from ._plots import PlainAxis, theme_colours

HOVER_INTERVAL_MS = 30
CLICK_RADIUS_PX = 6.0
MAX_LASSO_VERTICES = 400
SELECTION_ARGB = int(pack_argb((1.0, 0.9, 0.0, 1.0))[0])

pg.setConfigOptions(antialias=False)


def _fill_polygon(size: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Even-odd scanline fill of a polygon (vertex rows / cols in cell units) on a size² grid.

    Cell (r, c) is inside when its corner (r, c) is (the rule of ``points_in_poly``).
    """
    r0, c0 = rows, cols
    r1, c1 = np.roll(rows, -1), np.roll(cols, -1)
    line = np.arange(size, dtype=np.float64)[:, None]
    spans = ((r0 <= line) & (r1 > line)) | ((r1 <= line) & (r0 > line))  # (size, edges)
    which_row, which_edge = np.nonzero(spans)
    t = (line[which_row, 0] - r0[which_edge]) / (r1[which_edge] - r0[which_edge])
    crossing = c0[which_edge] + t * (c1[which_edge] - c0[which_edge])
    start = np.clip(np.ceil(crossing), 0, size).astype(np.intp)  # first column right of the crossing
    toggles = np.zeros((size, size + 1), dtype=np.int32)
    np.add.at(toggles, (which_row, start), 1)
    return (np.cumsum(toggles, axis=1)[:, :size] & 1).astype(bool)


def _outline_cells(size: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Cells of a size² grid that the polygon's edges pass through, grown by one cell."""
    r0, c0 = rows, cols
    r1, c1 = np.roll(rows, -1), np.roll(cols, -1)
    steps = np.ceil(2 * np.maximum(np.abs(r1 - r0), np.abs(c1 - c0))).astype(np.intp) + 2  # ≤ half a cell apart
    edge = np.repeat(np.arange(len(rows)), steps)
    first = np.repeat(np.cumsum(steps) - steps, steps)
    t = (np.arange(edge.size) - first) / np.repeat(steps - 1, steps)
    rr = np.clip(np.floor(r0[edge] + t * (r1 - r0)[edge]).astype(np.intp), 0, size - 1)
    cc = np.clip(np.floor(c0[edge] + t * (c1 - c0)[edge]).astype(np.intp), 0, size - 1)
    near = np.zeros((size, size), dtype=bool)
    near[rr, cc] = True
    grown = near.copy()
    grown[1:] |= near[:-1]
    grown[:-1] |= near[1:]
    grown[:, 1:] |= grown[:, :-1].copy()
    grown[:, :-1] |= grown[:, 1:].copy()
    return grown


def points_inside(x: np.ndarray, y: np.ndarray, polygon: np.ndarray, grid: int = 512) -> np.ndarray:
    """Indices of the points (x, y) inside ``polygon`` ((M, 2) in the same coordinates); exact.

    The polygon is rasterised on a ``grid``² mask over its bounding box; points in cells
    well inside or outside are decided by the mask (one lookup each), points in cells
    near the outline by the exact point-in-polygon test.
    """
    (x0, y0), (x1, y1) = polygon.min(0), polygon.max(0)
    box = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    if box.size == 0 or x1 <= x0 or y1 <= y0:
        return box
    sx, sy = (grid - 1) / (x1 - x0), (grid - 1) / (y1 - y0)
    col = np.minimum(((x[box] - x0) * sx).astype(np.intp), grid - 1)
    row = np.minimum(((y[box] - y0) * sy).astype(np.intp), grid - 1)
    mask = _fill_polygon(grid, (polygon[:, 1] - y0) * sy, (polygon[:, 0] - x0) * sx)
    # cells the outline passes through (and their neighbours): there a cell is partly inside
    near = _outline_cells(grid, (polygon[:, 1] - y0) * sy, (polygon[:, 0] - x0) * sx)
    inside = mask[row, col]
    check = near[row, col]
    if check.any():
        inside[check] = points_in_poly(np.column_stack([x[box][check], y[box][check]]), polygon)
    return box[inside]


class SelectViewBox(pg.ViewBox):
    """A ViewBox whose left-drag pans, or draws a lasso / rectangle, depending on ``mode``."""

    sigPolygon = Signal(object)  # (M, 2) float array in data coordinates
    sigClick = Signal(float, float)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mode = "pan"  # 'pan' | 'lasso' | 'rectangle'
        self._path: list[tuple[float, float]] = []
        self.path_item = pg.PlotCurveItem(pen=pg.mkPen((255, 200, 0), width=2, style=Qt.PenStyle.DashLine))
        self.path_item.setZValue(1e6)
        self.addItem(self.path_item, ignoreBounds=True)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            self.sigClick.emit(p.x(), p.y())
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:
        if self.mode == "pan" or ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        p = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            s = self.mapSceneToView(ev.buttonDownScenePos())
            self._path = [(s.x(), s.y())]
        self._path.append((p.x(), p.y()))
        polygon = self.current_polygon()
        closed = np.vstack([polygon, polygon[:1]])
        self.path_item.setData(closed[:, 0], closed[:, 1])
        if ev.isFinish():
            self.path_item.setData([], [])
            self._path = []
            self.sigPolygon.emit(polygon)

    def current_polygon(self) -> np.ndarray:
        path = np.asarray(self._path, dtype=np.float64)
        if self.mode == "rectangle":
            (x0, y0), (x1, y1) = path[0], path[-1]
            return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        return path


class LatentPlot(pg.PlotWidget):
    """Scatter of N points with overlays.

    Signals
    -------
    clicked(x, y, index)
        A left click at plot coordinates; ``index`` is the nearest point
        within a few screen pixels, or -1 for an empty spot.
    hovered(x, y)
        The mouse rested over the plot (throttled to one per 30 ms).
    polygon_selected(indices)
        A lasso / rectangle was drawn; ``indices`` are the points inside.
    """

    clicked = Signal(float, float, int)
    hovered = Signal(float, float)
    polygon_selected = Signal(object)

    def __init__(self, parent=None, viewer=None) -> None:
        self.box = SelectViewBox()
        super().__init__(parent=parent, viewBox=self.box,
                         axisItems={"bottom": PlainAxis("bottom"), "left": PlainAxis("left")})
        colours = theme_colours(viewer)
        self.setBackground(colours["canvas"])
        for name in ("bottom", "left"):
            axis = self.getPlotItem().getAxis(name)
            axis.setPen(pg.mkPen(colours["text"]))
            axis.setTextPen(pg.mkPen(colours["text"]))
        self.setMinimumSize(260, 220)
        self.x = np.zeros(0)
        self.y = np.zeros(0)
        self.point_size = 3
        self.scatter = FastScatterItem(size=self.point_size)
        self.selection_overlay = FastScatterItem(size=self.point_size)
        self.frame_overlay = FastScatterItem(size=5, edge=(0.0, 0.0, 0.0, 1.0))
        self.marker = pg.ScatterPlotItem(size=16, symbol="+", pen=pg.mkPen("w", width=2), brush=pg.mkBrush("w"))
        for z, item in enumerate((self.scatter, self.selection_overlay, self.frame_overlay, self.marker)):
            item.setZValue(z)
            self.addItem(item)
        self.background = pg.ImageItem()
        self.background.setZValue(-10)
        self.background.setOpacity(0.6)
        self.addItem(self.background, ignoreBounds=True)
        self.background_image = None
        self.colours = np.zeros(0, dtype=np.uint32)
        self._hover_pos: tuple[float, float] | None = None
        self._hover_timer = QTimer(self)
        self._hover_timer.setSingleShot(True)
        self._hover_timer.setInterval(HOVER_INTERVAL_MS)
        self._hover_timer.timeout.connect(self._emit_hover)
        self.hover_enabled = True
        self.box.sigClick.connect(self.handle_click)
        self.box.sigPolygon.connect(self.select_polygon)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    # ------------------------------------------------------------------ data
    def set_points(self, x: np.ndarray, y: np.ndarray, levels: np.ndarray, lut: np.ndarray) -> None:
        """Show points at ``(x, y)`` coloured by ``lut[levels]`` (lut: (L, 4) floats in 0..1)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
        self.x, self.y = x, y
        self.colours = pack_argb(lut)[np.asarray(levels, dtype=np.intp)]
        self.scatter.setData(x, y, self.colours)
        self.frame_overlay.clear()
        self.selection_overlay.clear()
        self.marker.clear()
        if np.isfinite(x).any() and np.isfinite(y).any():
            self.autoRange(padding=0.05)

    def set_colours(self, levels: np.ndarray, lut: np.ndarray) -> None:
        """Recolour all points (only when the colour column changes)."""
        self.colours = pack_argb(lut)[np.asarray(levels, dtype=np.intp)]
        finite = np.isfinite(self.x) & np.isfinite(self.y)
        self.scatter.setColours(self.colours[finite])

    def set_point_size(self, size: int) -> None:
        self.point_size = int(size)
        self.scatter.setSize(self.point_size)
        self.selection_overlay.setSize(self.point_size)

    # -------------------------------------------------------------- overlays
    def _valid(self, indices) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.intp).ravel()
        return idx[(idx >= 0) & (idx < len(self.x))]

    def show_selection(self, indices: np.ndarray) -> None:
        """Paint points ``indices`` in the selection colour (an overlay; the scatter is not touched)."""
        idx = self._valid(indices)
        self.selection_overlay.setData(self.x[idx], self.y[idx], SELECTION_ARGB)

    def show_frame(self, indices: np.ndarray) -> None:
        """Draw points ``indices`` larger, with their colours and a dark edge (the current frame)."""
        idx = self._valid(indices)
        self.frame_overlay.setData(self.x[idx], self.y[idx], self.colours[idx] if len(self.colours) else 0)

    def set_background(self, image: np.ndarray | None, rect: tuple | None = None) -> None:
        """Draw ``image`` (row 0 at the top) over ``rect = (x, y, width, height)`` behind the points."""
        self.background_image = image
        if image is None:
            self.background.clear()
            return
        finite = image[np.isfinite(image)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        # ImageItem's first axis is x; flip rows so the top row lands at the largest y
        self.background.setImage(np.ascontiguousarray(image[::-1].T), levels=(lo, hi if hi > lo else lo + 1e-6))
        self.background.setRect(QRectF(*rect))

    def show_marker(self, x: float | None, y: float | None) -> None:
        if x is None:
            self.marker.clear()
        else:
            self.marker.setData(x=[x], y=[y])

    # -------------------------------------------------------------- gestures
    def nearest_point(self, x: float, y: float, radius_px: float = CLICK_RADIUS_PX) -> int:
        """Index of the point nearest to ``(x, y)`` within ``radius_px`` screen pixels, or -1."""
        if not len(self.x):
            return -1
        pw, ph = self.box.viewPixelSize()
        pw, ph = (pw or 1.0), (ph or 1.0)
        near = np.flatnonzero((np.abs(self.x - x) <= radius_px * pw) & (np.abs(self.y - y) <= radius_px * ph))
        if near.size == 0:
            return -1
        d2 = ((self.x[near] - x) / pw) ** 2 + ((self.y[near] - y) / ph) ** 2
        best = int(np.argmin(d2))
        return int(near[best]) if d2[best] <= radius_px**2 else -1

    def handle_click(self, x: float, y: float) -> None:
        """The slot a left click goes to, in plot coordinates."""
        self.clicked.emit(float(x), float(y), self.nearest_point(x, y))

    def select_polygon(self, polygon: np.ndarray) -> np.ndarray:
        """Indices of the points inside ``polygon`` ((M, 2) plot coordinates); emits ``polygon_selected``."""
        polygon = np.asarray(polygon, dtype=np.float64)
        if polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3:
            inside = np.zeros(0, dtype=np.intp)
        else:
            if len(polygon) > MAX_LASSO_VERTICES:  # a long freehand path: thin it, the shape stays
                polygon = polygon[np.linspace(0, len(polygon) - 1, MAX_LASSO_VERTICES).astype(int)]
            inside = points_inside(self.x, self.y, polygon)
        self.polygon_selected.emit(inside)
        return inside

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if not self.hover_enabled or not self.box.sceneBoundingRect().contains(scene_pos):
            return
        p = self.box.mapSceneToView(scene_pos)
        self._hover_pos = (p.x(), p.y())
        if not self._hover_timer.isActive():
            self._hover_timer.start()

    def _emit_hover(self) -> None:
        if self._hover_pos is not None:
            self.hovered.emit(*self._hover_pos)
