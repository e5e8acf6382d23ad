"""Shared helpers: timing with a warm-up (compile excluded unless said), and the machine description."""

import os
import platform
import time

import jax


def best_time(fn, repeats=3):
    """Best wall time of fn() over repeats, after one warm-up call; fn must block until its result is ready."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS reports one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}; {os.cpu_count()} logical cores visible (affinity {usable_cores()}); {mem:.0f} GiB RAM; "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}; jax {jax.__version__}; "
            f"devices {jax.devices()}; load average at start {load:.1f}")
