"""Where a compiled step's time goes: each XLA kernel's share of one traced run (``jax.profiler``), for items 2 and 3.

    .venv/bin/python benchmarks/profile_step.py dpsgd     # item 2's D-PSGD run (also: dcd, choco, sweep)
    .venv/bin/python benchmarks/profile_step.py lenet --steps 20   # item 9's LeNet-5 stack, n = 16

It compiles the run with its optimized HLO dumped (``--xla_dump_to``), runs it once more under ``jax.profiler.trace``
and sums, for each HLO instruction of the dump, the self time of its trace events (a ``while`` or ``cond`` without the
kernels it runs). ``--keep-hlo DIR`` keeps the dump, to read what each fusion computes. The profiler slows every kernel
down, so read the shares, not the absolute times; the benchmarks time runs without it. Not part of ``make bench``: it
measures no target, it explains one.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import shutil
import sys
import tempfile

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_e2e  # noqa: E402
import bench_sweep  # noqa: E402
import jaxgossip as jg  # noqa: E402


def _e2e_run(key, steps):
    prob, cases = bench_e2e.problem_and_cases(*bench_e2e._data())
    algo = {k: a for _, k, a in cases}[key]
    topo = jg.topology.ring(bench_e2e.N)
    return lambda: jg.simulate(prob, algo, topo, steps=steps, eval_every=steps, shard=False)


def _sweep_run(steps):
    prob, topo = bench_sweep.problem(), jg.topology.ring(16)
    return lambda: bench_sweep._sweep(prob, topo, bench_sweep.LRS, steps)


def _lenet_run(steps, worker_map="auto", conv="auto"):
    import bench_cnn_throughput

    prob = bench_cnn_throughput.stack_problem(16, worker_map, conv)
    algo, topo = jg.algorithms.dpsgd(lr=bench_cnn_throughput.LR), jg.topology.ring(16)
    return lambda: jg.simulate(prob, algo, topo, steps=steps, eval_every=steps, metrics=["loss"])


def hlo_names(directory: str) -> set:
    """Instruction names of every optimized HLO module dumped in ``directory``."""
    names = set()
    for path in glob.glob(os.path.join(directory, "*after_optimizations.txt")):
        with open(path) as f:
            names.update(re.findall(r"^\s*(?:ROOT )?%([\w.-]+) = ", f.read(), flags=re.M))
    return names


def kernel_times(events, kernels):
    """Self time (us) and count of the events named in ``kernels``, from a trace's complete ("X") events.

    A kernel event nested in another on the same thread (a fusion inside a ``while``) is taken off its parent's time.
    """
    total, count = collections.Counter(), collections.Counter()
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and e.get("name") in kernels:
            by_thread[e.get("pid"), e.get("tid")].append(e)
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
        open_ = []  # the enclosing events, innermost last
        for e in evs:
            while open_ and open_[-1]["ts"] + open_[-1].get("dur", 0) <= e["ts"]:
                open_.pop()
            if open_:
                total[open_[-1]["name"]] -= e.get("dur", 0)
            total[e["name"]] += e.get("dur", 0)
            count[e["name"]] += 1
            open_.append(e)
    return total, count


def profile(run, steps, hlo_dir):
    """The kernels' shares of ``run()``'s second call; ``hlo_dir`` is where XLA dumps the optimized HLO."""
    run()  # compile outside the trace
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            run()
        path = glob.glob(os.path.join(tmp, "**", "*.trace.json.gz"), recursive=True)[0]
        with gzip.open(path) as f:
            trace = json.load(f)
    total, count = kernel_times(trace["traceEvents"] if isinstance(trace, dict) else trace, hlo_names(hlo_dir))
    everything = sum(total.values())
    lines = [f"{'kernel':<40} {'us/step':>9} {'share':>6} {'calls/step':>10}"]
    for name, us in total.most_common(12):
        lines.append(f"{name:<40} {us / steps:9.2f} {us / everything:6.0%} {count[name] / steps:10.2f}")
    lines.append(f"{'all kernels':<40} {everything / steps:9.2f}   (under the profiler; shares are what to read)")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", choices=["dpsgd", "dcd", "choco", "sweep", "lenet"],
                    help="item 2's run of that algorithm (n = 64, d = 1000, batch 1), item 3's 64-configuration sweep, "
                         "or item 9's LeNet-5 D-PSGD stack (n = 16, batch 32)")
    ap.add_argument("--worker-map", default="auto", help="lenet only: auto, vmap or map")
    ap.add_argument("--conv", default="auto", help="lenet only: auto, im2col or xla")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--keep-hlo", metavar="DIR", default=None, help="keep the optimized HLO dump in DIR")
    args = ap.parse_args(argv)
    # XLA reads its flags when the first backend starts, which importing jax and jaxgossip does not do.
    hlo_dir = tempfile.mkdtemp(prefix="jaxgossip-hlo-")
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={hlo_dir} --xla_dump_hlo_as_text".strip()
    if args.case == "lenet":
        run = _lenet_run(args.steps, args.worker_map, args.conv)
    else:
        run = _sweep_run(args.steps) if args.case == "sweep" else _e2e_run(args.case, args.steps)
    try:
        print(profile(run, args.steps, hlo_dir))
    finally:
        if args.keep_hlo:
            shutil.copytree(hlo_dir, args.keep_hlo, dirs_exist_ok=True)
            print(f"optimized HLO in {args.keep_hlo}")
        shutil.rmtree(hlo_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
