"""What a run needs from the machine it runs on: thread counts, seeds and a description of the machine.

Every thread setting goes through `torch_threads`, which restores the caller's setting afterwards,
so scoring on one thread inside a service or a benchmark never changes the process around it.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import polars as pl
import torch

from shopformer._version import __version__

__all__ = ["machine_info", "matmul_gflops", "physical_cores", "set_seed", "torch_threads", "versions"]


def physical_cores() -> int:
    """Physical cores this process may use: extra hyper-threads slow dense maths down, not up."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        allowed = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or allowed
    except ImportError:
        physical = allowed
    return max(1, min(allowed, physical))


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch runs on `n` threads inside the block and on as many as before after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def set_seed(seed: int) -> None:
    """Seeds torch's global generator: the same seed then gives the same weights and batches."""
    torch.manual_seed(seed)


def machine_info() -> dict[str, Any]:
    """CPU model, cores this process may use, RAM and the torch thread count."""
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 if hasattr(os, "sysconf") else None
    return {"cpu": cpu, "cores_available": cores, "ram_gib": None if ram is None else round(ram, 1),
            "platform": platform.platform(), "torch_threads": torch.get_num_threads()}


def versions() -> dict[str, str]:
    """Versions of Shopformer and of the libraries its numbers depend on."""
    return {"shopformer": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "polars": pl.__version__}


def matmul_gflops(size: int = 1024, repeats: int = 10) -> float:
    """Measured float32 matrix-multiply speed of this machine with the current torch threads."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up: first call pays for thread-pool start and page faults
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        timings.append(time.perf_counter() - started)
    return 2 * size**3 / float(np.median(timings)) / 1e9
