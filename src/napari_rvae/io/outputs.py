"""Where a command writes: checked before any work, never over an input or a model unless asked.

Every ``napari-rvae`` command that writes declares its output once (an :class:`Output` in
``cli.COMMANDS``); :func:`check_output` runs before the command reads or computes
anything and refuses, with one line,

- a file name whose extension is not the format written (``-o sites.npy`` for a table);
- an output that is one of the command's inputs, or a file inside a model or project
  folder (unless ``--overwrite``);
- an existing model or project folder (unless ``--overwrite``, or ``--resume`` for
  ``train``), and any other non-empty folder: a model or project folder is replaced as a
  whole, so it must not hold anything else;
- a place that cannot be written (a missing parent that cannot be created, a read-only
  folder, a file where a folder should be — e.g. ``/proc/p``).

When writing fails anyway (a full disk), :func:`write_or_rescue` keeps what was computed
in a rescue folder and says where (:class:`OutputError`).
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

#: files whose presence marks a folder as a napari-rvae model / project / results folder
MARKERS = {"model": ("model.json", "model.safetensors"), "project": ("project.json",),
           "results": ("beta_search.json",), "export": ("export.json",),
           "report": ("reproduce.json",)}


class OutputError(OSError):
    """Writing a result failed; the message (one line) says why and where what was computed is kept."""


@dataclass(frozen=True)
class Output:
    """What a command writes.

    kind : ``"file"`` or ``"folder"`` (a folder written, and replaced, as a whole)
    suffixes : file extensions of the formats the command writes (files)
    holds : what the folder is (``"model"``, ``"project"``, ``"results"``), for messages and markers
    option : the ``args`` attribute holding the path (``-o``)
    inputs : ``args`` attributes holding input paths
    resume : ``args`` attribute (a flag) that allows writing into an existing model
    """

    kind: str
    suffixes: tuple[str, ...] = ()
    holds: str = ""
    option: str = "output"
    inputs: tuple[str, ...] = ()
    resume: str = ""

    @property
    def what(self) -> str:
        if self.kind == "folder":
            return f"{self.holds or 'output'} folder"
        return "/".join(s.lstrip(".") for s in self.suffixes) + " file" if self.suffixes else "file"


def add_overwrite_option(parser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="allow replacing an input file or an existing model / project folder given as -o")


def _paths(values: Any) -> list[Path]:
    if values is None or isinstance(values, bool):
        return []
    if isinstance(values, (list, tuple)):
        return [p for v in values for p in _paths(v)]
    text = str(values)
    if not text or text == "default":  # the shipped model
        return []
    return [Path(text)]


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _inside(child: Path, folder: Path) -> bool:
    try:
        return child.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def folder_holds(folder: Path) -> str:
    """``"model"``, ``"project"``, ``"results"`` when ``folder`` is one of ours, else ``""``."""
    for kind, names in MARKERS.items():
        if any((folder / name).exists() for name in names):
            return kind
    return ""


def check_output(args: Any, spec: Output) -> Path | None:
    """Validate ``args.<spec.option>`` before the command does any work; return the path.

    Raises ``ValueError`` (one line) for a refused output; nothing is created.
    """
    value = getattr(args, spec.option, None)
    if value is None:
        return None
    path = Path(value)
    flag = "-o" if spec.option == "output" else "--" + spec.option.replace("_", "-")
    overwrite = bool(getattr(args, "overwrite", False))
    resume = bool(spec.resume and getattr(args, spec.resume, False))
    inputs = [p for name in spec.inputs for p in _paths(getattr(args, name, None))]
    if str(value).strip() == "":
        raise ValueError(f"{flag}: give a {spec.what} name")
    if spec.kind == "file":
        _check_file(path, spec, flag, inputs, overwrite)
    else:
        _check_folder(path, spec, flag, inputs, overwrite, resume)
    _check_writable(path.parent, flag, path)  # a file's folder, or where a folder's staging copy goes
    return path


def _check_file(path: Path, spec: Output, flag: str, inputs: list[Path], overwrite: bool) -> None:
    if spec.suffixes and path.suffix.lower() not in spec.suffixes:
        raise ValueError(f"{flag} {path.name}: this command writes a {spec.what}; give a name ending in "
                         f"{' or '.join(spec.suffixes)}")
    if path.is_dir() and not _partitioned_table(path):
        raise ValueError(f"{flag} {path}: is a folder; give a file name ending in {' or '.join(spec.suffixes) or 'an extension'}")
    for source in inputs:
        if _same(path, source) and not overwrite:
            raise ValueError(f"{flag} {path}: is an input of this command; writing there would destroy it "
                             "(give another name, or --overwrite to replace it)")
    holder = folder_holds(path.parent)
    if holder in ("model", "project") and not overwrite:
        raise ValueError(f"{flag} {path}: is inside the {holder} folder {path.parent}; writing there changes the "
                         f"{holder} (write elsewhere, or --overwrite)")
    if path.exists() and not os.stat(path).st_mode & 0o222 and not overwrite:
        raise ValueError(f"{flag} {path}: the file is read-only; give another name (or --overwrite)")


def _partitioned_table(path: Path) -> bool:
    """A table written in chunks (a folder of ``part-*.parquet``, :mod:`napari_rvae.chunks`): replaced like a file."""
    return path.suffix.lower() in (".parquet", ".pq") and (path / "_run.json").is_file()


def _check_folder(path: Path, spec: Output, flag: str, inputs: list[Path], overwrite: bool, resume: bool) -> None:
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path}: is a file; give a folder name for the {spec.what}")
    for source in inputs:
        if _same(source, path):
            if source.is_dir() and (overwrite or resume):
                continue  # e.g. fine-tuning a model in place: it is read before anything is written
            raise ValueError(f"{flag} {path}: is an input of this command; give another folder"
                             + (" (or --overwrite)" if source.is_dir() else ""))
        if _inside(source, path):
            raise ValueError(f"{flag} {path}: the input {source} is inside it, and the {spec.what} is replaced as "
                             "a whole; move the input out or write elsewhere")
        if _inside(path, source) and source.is_dir():
            raise ValueError(f"{flag} {path}: is inside the input folder {source}; write elsewhere")
    if not path.is_dir():
        return
    try:
        entries = [e for e in os.listdir(path) if not e.startswith(".")]
    except OSError as err:
        raise ValueError(f"{flag} {path}: cannot list the folder ({err.strerror})") from None
    if not entries:
        return
    holder = folder_holds(path)
    if spec.holds == "model" and holder == "model":
        if resume or overwrite:
            return
        raise ValueError(f"{flag} {path}: already holds a trained model; pass "
                         + ("--resume to continue training it, or " if spec.resume else "")
                         + "--overwrite to replace it (or give a new folder)")
    if holder and holder == spec.holds:
        if overwrite:
            return
        raise ValueError(f"{flag} {path}: already holds a {holder}; pass --overwrite to replace it (the whole "
                         "folder is rewritten) or give a new folder")
    what = f"a {holder} folder" if holder else "a folder with other files"
    raise ValueError(f"{flag} {path}: is {what} ({', '.join(sorted(entries)[:3])}{', …' if len(entries) > 3 else ''}); "
                     f"a {spec.what} is written as a whole, replacing what is there, so give a new or empty folder")


def _check_writable(parent: Path, flag: str, path: Path) -> None:
    """Create what is missing of ``parent`` and a probe file in it, then remove them again."""
    made: list[Path] = []
    probe = None
    try:
        missing = []
        current = parent if str(parent) else Path(".")
        while not current.exists():
            missing.append(current)
            if current.parent == current:
                break
            current = current.parent
        if not current.is_dir():
            raise ValueError(f"{flag} {path}: {current} is a file, not a folder")
        for folder in reversed(missing):
            folder.mkdir()
            made.append(folder)
        fd, probe = tempfile.mkstemp(prefix=".napari-rvae-probe-", dir=parent)
        os.close(fd)
    except OSError as err:
        raise ValueError(f"{flag} {path}: cannot write there ({err.strerror or err})") from None
    finally:
        if probe is not None:
            try:
                os.unlink(probe)
            except OSError:
                pass
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass


# ------------------------------------------------------------------ rescue
def rescue_places(target: Path) -> Iterable[Path]:
    """Where results are kept when their output cannot be written: beside the target, then
    in the system's temporary folder."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = Path(target).name or "output"
    yield Path(target).parent / f"{name}.rescued-{stamp}"
    yield Path(tempfile.gettempdir()) / f"napari-rvae-rescued-{stamp}-{os.getpid()}" / name


def write_or_rescue(write: Callable[[Path], Any], target: str | os.PathLike, what: str) -> Any:
    """``write(target)``; when it fails with an ``OSError`` (full disk, lost permission),
    ``write`` into a rescue place instead and raise :class:`OutputError` saying where."""
    target = Path(target)
    try:
        return write(target)
    except OSError as err:
        reason = err.strerror or str(err)
        for place in rescue_places(target):
            try:
                place.parent.mkdir(parents=True, exist_ok=True)
                write(place)
            except OSError:
                shutil.rmtree(place, ignore_errors=True) if place.is_dir() else None
                continue
            raise OutputError(f"could not write {what} to {target} ({reason}); it was kept in {place}") from None
        raise OutputError(f"could not write {what} to {target} ({reason}), nor keep it anywhere else") from None


def keep_results(output: str | os.PathLike, sites=None, model=None) -> str:
    """Save what a failed run computed (a sites table, a model) in a rescue place next to
    ``output`` (or in the temporary folder); return a phrase that says where, for the message."""
    from .sites import write_sites

    for place in rescue_places(Path(output)):
        try:
            place.mkdir(parents=True)
            if sites is not None:
                write_sites(sites, place / "sites.csv")
            if model is not None:
                from ..vae import save_model

                save_model(model, place / "model")
        except OSError:
            continue
        if sites is not None and model is not None:
            return f"the sites and the model were kept in {place}"
        return f"{'the sites were' if sites is not None else 'the model was'} kept in {place}"
    return "what was computed could not be kept anywhere"


def describe_os_error(err: OSError) -> str:
    """An ``OSError`` as one line: what failed and on which path."""
    if isinstance(err, OutputError):
        return " ".join(str(err).split())
    text = err.strerror or " ".join(str(err).split()) or type(err).__name__
    names = [n for n in (err.filename, getattr(err, "filename2", None)) if n]
    return f"{text}: {' -> '.join(str(n) for n in names)}" if names else text
