"""Whether napari can open a window here, asked in a child process.

A broken display (``DISPLAY`` set to a dead X server, no OpenGL) makes Qt abort the whole
process, so ``napari-rvae demo`` must not find out in its own: it runs this probe first and
falls back to the headless demo. No Qt is imported here (the probe is a separate Python).
"""

from __future__ import annotations

import os
import subprocess
import sys

#: a child process that opens Qt and an OpenGL context, as napari's canvas needs (one line of
#: statements: the program is text for the child, and this module's own imports stay Qt-free)
_DISPLAY_PROBE = ("import sys; import qtpy.QtGui as gui; import qtpy.QtWidgets as widgets; "
                  "app = widgets.QApplication(sys.argv[:1]); "
                  "sys.exit(0 if gui.QOpenGLContext().create() else 3)")


def usable_display(timeout: float = 30.0) -> tuple[bool, str]:
    """``(True, "")`` when a napari window can open here, else ``(False, why not)`` in one line."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "$DISPLAY is unset"
    try:
        done = subprocess.run([sys.executable, "-c", _DISPLAY_PROBE], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"opening a window did not answer within {timeout:.0f} s"
    except OSError as err:
        return False, f"the display probe could not start ({err.strerror or err})"
    if done.returncode == 0:
        return True, ""
    lines = [line.strip() for line in (done.stderr or "").splitlines() if line.strip()]
    telling = [line for line in lines if "display" in line.lower() or "connect" in line.lower()]
    why = (telling or lines or ["no OpenGL context" if done.returncode == 3 else f"exit status {done.returncode}"])[0]
    name = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or "the display"
    return False, f"{name} is set but unusable ({why[:160]})"
