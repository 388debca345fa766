"""What this computer's processor offers, read without importing torch (so a process that only plans
the work, such as the client of a chunked run, stays small)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where bfloat16 convolutions
    are about twice as fast as float32; elsewhere torch emulates them, more slowly. Read from the
    kernel's CPU flags on Linux; asked of torch elsewhere."""
    flags = _linux_flags()
    if flags is not None:
        return bool(flags & {"avx512_bf16", "amx_tile"})
    try:
        import torch

        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except Exception:  # noqa: BLE001 - private helpers gone: assume no native bfloat16
        return False


def _linux_flags() -> set | None:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None
