"""What the screenshot scripts share: let napari's event loop run, and wait for a dock's job."""

import time

from qtpy.QtWidgets import QApplication


def settle(seconds=0.6):
    """Run the event loop for ``seconds`` (paints, queued signals)."""
    app = QApplication.instance()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.02)


def wait(job, timeout=900.0):
    """Run the event loop until the dock's background ``job`` is done; its error, if any, is raised."""
    start = time.perf_counter()
    while job.running:
        settle(0.05)
        if time.perf_counter() - start > timeout:
            raise TimeoutError(job.name)
    assert job.last_error is None, job.last_error
