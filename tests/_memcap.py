"""Run readers on many files in a child process under a memory cap; report each file's outcome.

Usage (child side): ``python _memcap.py [--check-values] CAP_MB SECONDS FILE...``. The child imports every
reader first, then caps its address space at its current size + CAP_MB (``RLIMIT_AS``), and
for each file resets the peak-RSS counter, reads it with ``read_movie`` (and describes it the
way ``napari-rvae info`` does) under an alarm of SECONDS, and prints one JSON line:
``{"file", "outcome": ok | clean | dirty | memory | slow, "peak_mb", "message"}``.
``clean`` is the contract for a bad file: a ``ValueError`` with a one-line message.
With ``--check-values`` each movie's values are also checked for NaN / ±inf as the pipeline does
(``io.validate.check_finite``, block by block).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


class _Slow(Exception):
    pass


def _alarm(*_):
    raise _Slow()


def main(argv: list[str]) -> int:
    check_values = argv[:1] == ["--check-values"]
    argv = argv[1:] if check_values else argv
    cap_mb, seconds, paths = float(argv[0]), int(argv[1]), argv[2:]
    import numpy as np

    from napari_rvae.io.movie import describe_movie, read_movie
    from napari_rvae.io.validate import check_finite

    for module in ("h5py", "tifffile", "igor2.binarywave", "rsciio.digitalmicrograph", "rsciio.emd", "rsciio.hspy",
                   "rsciio.tia", "rsciio.mrc", "dask.array"):
        __import__(module)
    base_rss = _status("VmRSS")
    vm = _status("VmSize")
    limit = int(vm + cap_mb * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    for path in paths:
        with open("/proc/self/clear_refs", "w") as f:  # reset VmHWM to the current RSS
            f.write("5")
        start = time.perf_counter()
        message = ""
        signal.alarm(seconds)
        try:
            movies = read_movie(path)
            for m in movies:
                describe_movie(m)
                assert m.data.ndim == 3 and np.dtype(m.data.dtype) == np.float32, "not a (T, Y, X) float32 movie"
                if check_values:
                    check_finite(m.data, "movie")
            outcome = "ok"
            message = ";".join(f"{m.name} {tuple(m.data.shape)}" for m in movies)
        except _Slow:
            outcome = "slow"
        except MemoryError as err:
            outcome, message = "memory", f"MemoryError: {err}"
        except ValueError as err:
            message = str(err)
            outcome = "clean" if message and "\n" not in message else "dirty"
            if "MemoryError" in message:  # a reader tried to allocate past the cap and said so
                outcome = "memory"
        except BaseException as err:  # noqa: BLE001 - the point is to see everything
            outcome, message = "dirty", f"{type(err).__name__}: {err}"
        finally:
            signal.alarm(0)
        peak = max(_status("VmHWM") - base_rss, 0) / 2**20
        print(json.dumps({"file": path, "outcome": outcome, "peak_mb": round(peak, 1),
                          "seconds": round(time.perf_counter() - start, 2), "message": message[:300]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
