"""napari docks (the only package that imports Qt, napari.qt, pyqtgraph, superqt or magicgui).

Each dock is a thin view over the core: it reads layers, calls core
functions (long ones in a background worker) and writes results back as
layers and feature columns.
"""
