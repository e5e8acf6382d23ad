"""Compressed steps against plain ones: D-PSGD, DCD-PSGD and CHOCO-SGD with the 16-bit quantizer of item 2 (n = 64,
d = 1000, batch 1, ring), timed side by side in one process (issue 25's target: DCD and CHOCO within 1.5x of D-PSGD).

    .venv/bin/python benchmarks/bench_compressed_step.py [--steps 1000] [--rounds 15]

Each round runs every algorithm once (a whole ``jg.simulate`` call after a compiling one, as item 2 times them); each
keeps its best time over the rounds, wall-clock and process CPU time, so a burst of load on this shared machine slows
one round of all of them rather than one algorithm. The ratios are what to read; ``benchmarks/profile_step.py dcd``
shows where a step's time goes.
"""

import argparse
import time

import bench_e2e
import jaxgossip as jg


def measure(steps=1000, rounds=15):
    prob, cases = bench_e2e.problem_and_cases(*bench_e2e._data())
    topo = jg.topology.ring(bench_e2e.N)

    def run(algo):
        jg.simulate(prob, algo, topo, steps=steps, eval_every=steps, shard=False)

    for _, _, algo in cases:
        run(algo)  # compile
    wall = {key: float("inf") for _, key, _ in cases}
    cpu = dict(wall)
    for _ in range(rounds):
        for _, key, algo in cases:
            c, t = time.process_time(), time.perf_counter()
            run(algo)
            wall[key] = min(wall[key], time.perf_counter() - t)
            cpu[key] = min(cpu[key], time.process_time() - c)
    return [(label, wall[key] / steps * 1e6, wall[key] / wall["dpsgd"], cpu[key] / cpu["dpsgd"])
            for label, key, _ in cases]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    print(f"{'algorithm':<24} {'us/step':>8} {'x D-PSGD (wall)':>16} {'x D-PSGD (cpu)':>15}")
    for label, us, ratio, cpu_ratio in measure(args.steps, args.rounds):
        print(f"{label:<24} {us:8.1f} {ratio:16.2f} {cpu_ratio:15.2f}")


if __name__ == "__main__":
    main()
