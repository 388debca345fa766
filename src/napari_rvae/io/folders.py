"""Folders replaced as a whole: a model or project folder is never a mix of two saves.

:func:`replaced_folder` gives the caller an empty staging folder beside the target
(``.NAME.new-PID-…``); everything is written there, flushed to disk, and the folder is
renamed ``.NAME.ready-PID-INODE`` (complete). Then it takes the target's place:

- on Linux with one ``renameat2(RENAME_EXCHANGE)`` — at every instant the path holds
  either the old complete folder or the new one; the old one, now under the ready
  name, is deleted;
- elsewhere with two renames (old → ``.NAME.old-PID-INODE``, ready → NAME).

A crash (power loss, SIGKILL) or a full disk at any point leaves the old folder at the
path, or the new one, or — between the two renames of the fallback — nothing at the path
and both complete folders beside it. :func:`recover_folder`, which every load and every
save calls first, finishes the job: a ready folder is recognised by its own inode number
in its name (after an exchange the name holds the *old* folder, whose inode differs), so
it rolls forward to the new folder when that is complete, back to the old one otherwise,
and deletes leftovers of writers that are no longer running.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from .files import _UMASK

_NEW, _READY, _OLD = "new", "ready", "old"
_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<state>new|ready|old)-(?P<pid>\d+)-(?P<tag>[^.]+)$")


def _sibling(path: Path, state: str, tag: str) -> Path:
    return path.parent / f".{path.name}.{state}-{os.getpid()}-{tag}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _leftovers(path: Path) -> list[tuple[str, int, str, Path]]:
    """``(state, pid, tag, folder)`` of every staging / swapped-out sibling of ``path``."""
    found = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return found
    for entry in entries:
        match = _NAME.match(entry.name)
        if match and match["name"] == path.name and entry.is_dir(follow_symlinks=False):
            found.append((match["state"], int(match["pid"]), match["tag"], Path(entry.path)))
    return found


def _is_complete_ready(state: str, tag: str, folder: Path) -> bool:
    """A ``ready`` folder still holding the new content: its inode is the one in its name."""
    try:
        return state == _READY and int(tag) == os.stat(folder, follow_symlinks=False).st_ino
    except (OSError, ValueError):
        return False


def recover_folder(path: str | os.PathLike) -> Path:
    """Finish or undo an interrupted :func:`replaced_folder` of ``path``; return ``path``.

    Leftovers of running processes — this one included (another thread's save in progress) —
    are left alone.
    """
    path = Path(path)
    leftovers = [item for item in _leftovers(path) if not _alive(item[1])]  # another thread's save is alive too
    if not leftovers:
        return path
    ready = [item for item in leftovers if _is_complete_ready(item[0], item[2], item[3])]
    if ready:  # a complete new folder that never took its place: roll forward (newest first)
        newest = max(ready, key=lambda item: os.stat(item[3]).st_mtime)
        _swap_in(newest[3], path)
    elif not path.exists():  # the old folder was moved aside, the new one never finished: roll back
        old = [item for item in leftovers if item[0] in (_OLD, _READY)]
        if old:
            os.rename(max(old, key=lambda item: os.stat(item[3]).st_mtime)[3], path)
    for state, pid, tag, folder in _leftovers(path):  # whatever is left of dead writers is garbage
        if not _alive(pid) and folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
    return path


@contextlib.contextmanager
def replaced_folder(path: str | os.PathLike, markers: tuple[str, ...] = ()) -> Iterator[Path]:
    """Write a folder as a whole: ``with replaced_folder(p) as stage: …write into stage…``.

    When the block ends without an exception the staging folder replaces ``path`` (created
    if absent); on an exception the staging folder is deleted and ``path`` is untouched.
    Folder and files get the user's usual permissions (umask respected).

    ``markers`` names the files that make an existing folder one of ours (``model.json``,
    ``project.json``): a non-empty folder without any of them is someone else's and is
    refused (``ValueError``) rather than replaced.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: exists and is not a folder")
    if markers and path.is_dir():
        entries = sorted(e for e in os.listdir(path) if not e.startswith("."))
        if entries and not any((path / m).exists() for m in markers):
            raise ValueError(f"{path}: holds other files ({', '.join(entries[:3])}{', …' if len(entries) > 3 else ''}); "
                             "this folder would be replaced as a whole, so choose a new or empty folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(path)
    stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.{_NEW}-{os.getpid()}-", dir=path.parent))
    complete = False
    try:
        os.chmod(stage, 0o777 & ~_UMASK)
        yield stage
        _flush_tree(stage)
        ready = _sibling(path, _READY, str(os.stat(stage).st_ino))
        os.rename(stage, ready)
        stage, complete = ready, True
        _fsync_dir(path.parent)
        _swap_in(ready, path)
    except BaseException:
        if complete and not path.exists():  # the fallback moved the old folder aside: put it back
            old = [item for item in _leftovers(path) if item[0] == _OLD and item[1] == os.getpid()]
            with contextlib.suppress(OSError):
                if old:
                    os.rename(old[-1][3], path)
        shutil.rmtree(stage, ignore_errors=True)  # the new folder that did not go in (or the old one it replaced)
        raise


def _swap_in(ready: Path, path: Path) -> None:
    """Put the complete folder ``ready`` at ``path`` and delete what was there."""
    if not path.exists():
        os.rename(ready, path)
        _fsync_dir(path.parent)
        return
    if _exchange(ready, path):  # ready's name now holds the old folder
        _fsync_dir(path.parent)
        shutil.rmtree(ready, ignore_errors=True)
        return
    old = _sibling(path, _OLD, str(os.stat(path).st_ino))
    os.rename(path, old)
    os.rename(ready, path)
    _fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _flush_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder`` (a crash after the rename keeps the data)."""
    for root, dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
