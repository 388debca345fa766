"""A row of small image views: the decoded window, a site's real window and its reconstruction (or sample windows)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg


class WindowPanel(pg.GraphicsLayoutWidget):
    """Three titled image views side by side; images are shown like napari (row 0 at the top)."""

    TITLES = ("decoded", "window", "reconstruction")

    def __init__(self, parent=None, titles: tuple[str, ...] | None = None) -> None:
        super().__init__(parent=parent)
        if titles is not None:
            self.TITLES = tuple(titles)
        self.setBackground("k")
        self.setMinimumSize(300, 130)
        self.views: dict[str, pg.ViewBox] = {}
        self.items: dict[str, pg.ImageItem] = {}
        self.labels: dict[str, pg.LabelItem] = {}
        for col, title in enumerate(self.TITLES):
            self.labels[title] = self.addLabel(title, row=0, col=col, size="8pt")
            view = self.addViewBox(row=1, col=col, lockAspect=True, enableMouse=False, invertY=True, enableMenu=False)
            item = pg.ImageItem()
            view.addItem(item)
            self.views[title], self.items[title] = view, item
        self.images: dict[str, np.ndarray | None] = dict.fromkeys(self.TITLES)

    def set_image(self, title: str, image: np.ndarray | None, caption: str | None = None) -> None:
        """Show ``image`` ((w, w) array) in view ``title`` (None clears it)."""
        item = self.items[title]
        self.images[title] = image
        if image is None:
            item.clear()
        else:
            image = np.asarray(image, dtype=np.float32)
            finite = image[np.isfinite(image)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            item.setImage(image.T, levels=(lo, hi if hi > lo else lo + 1e-6))
            self.views[title].autoRange(padding=0.02)
        self.labels[title].setText(caption or title, size="8pt")
