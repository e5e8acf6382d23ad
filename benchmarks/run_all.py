"""Run every benchmark once and write benchmarks/RESULTS.md (``make bench``; ``--full`` for longer measurements).

Ratios are measured within this one run (against the copy bandwidth of this machine and a NumPy per-worker loop), never
asserted as timed tests. Each benchmark is one file here.
"""

import argparse
import datetime
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import types  # noqa: E402

import bench_bandwidth  # noqa: E402
import bench_cnn  # noqa: E402
import bench_cnn_throughput  # noqa: E402
import bench_e2e  # noqa: E402
import bench_resnet  # noqa: E402
import bench_rng  # noqa: E402
import bench_scaling  # noqa: E402
import bench_startup  # noqa: E402
import bench_sweep  # noqa: E402
import bench_sweep_vs_loop  # noqa: E402
from _common import machine  # noqa: E402

NO_GPU_NOTE = ("6. GPU: not measured in this run (a CPU host). `benchmarks/RESULTS-gpu.md` has the GPU numbers (NVIDIA "
               "H200, two sessions of issue 25, written by `benchmarks/gpu_results.py` from what "
               "`benchmarks/gpu_session.sh` returned); on a GPU host this same `python benchmarks/run_all.py` writes "
               "`RESULTS-gpu.md`, and `python benchmarks/bench_gpu.py` (item 12) measures ResNet-20 with n = 16 and 64 "
               "workers against the device's matmul rate and bandwidth.")


def _gpu_note():
    import jax

    if jax.default_backend() == "cpu":
        return NO_GPU_NOTE
    return (f"6. This run is on {jax.default_backend().upper()} ({jax.devices()[0].device_kind}): every jaxgossip row above "
            "is its number (the NumPy baselines run on the host CPU); item 1 is the fraction of the device's streaming "
            "bandwidth.")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--full", action="store_true", help="more steps and repeats (the default keeps `make bench` "
                    "to about 17 minutes on 2 cores)")
    ap.add_argument("--out", default=None, help="default: benchmarks/RESULTS.md, or RESULTS-gpu.md on a GPU")
    ap.add_argument("--only", default=None, help="comma-separated items to run, e.g. 1,2 (default: all)")
    args = ap.parse_args(argv)
    import jax

    if args.out is None:
        args.out = os.path.join(HERE, "RESULTS.md" if jax.default_backend() == "cpu" else "RESULTS-gpu.md")
    desc = machine()
    rows, t0 = [], time.perf_counter()
    sweep_vs_loop = types.SimpleNamespace(__name__="bench_sweep_vs_loop", run=bench_sweep_vs_loop.rows)
    benches = ((1, bench_bandwidth), (2, bench_e2e), (3, bench_sweep), (4, bench_scaling), (5, bench_startup),
               ("-", bench_rng), (7, bench_cnn), (8, sweep_vs_loop), (9, bench_cnn_throughput), (11, bench_resnet))
    # items 1-5, supporting rows, 7-8 (networks, issue 14; the 45-configuration sweep of issue 16), 9-11 (issue 15:
    # CNN throughput vs a loop, the arithmetic rate (its rows are numbered 10), ResNet-20 memory and time)
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        benches = tuple((i, m) for i, m in benches if str(i) in wanted)
    for i, mod in benches:
        t = time.perf_counter()
        for r in mod.run(quick=not args.full):
            rows.append((i, *r))
            print(f"{i}. {r[0]}: {r[1]}  (target {r[2] or '-'}; met: {r[3] or '-'})", flush=True)
        print(f"   [{mod.__name__}: {time.perf_counter() - t:.1f} s]", flush=True)
    lines = ["# Benchmark results", "",
             f"Written by `python benchmarks/run_all.py{' --full' if args.full else ''}"
             f"{' --only ' + args.only if args.only else ''}` (`make bench`) on "
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, in {time.perf_counter() - t0:.0f} s.",
             "", f"Machine: {desc}", "",
             "| # | benchmark | measured | target | met |", "|---|---|---|---|---|"]
    lines += [f"| {i} | {a} | {b} | {c} | {d} |" for i, a, b, c, d in rows]
    lines += ["", _gpu_note(), "",
              "All ratios are measured in this one run on a machine possibly shared with other jobs (see the load "
              "average above); they are never asserted as timed tests.", ""]
    with open(args.out + ".tmp", "w") as f:
        f.write("\n".join(lines))
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
