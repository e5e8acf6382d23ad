"""The command line: ``jaxgossip run``, ``jaxgossip list``, ``jaxgossip reproduce NAME``.

``jaxgossip run`` takes flags or a TOML file (flags override the file's top-level values). A TOML config::

    steps = 2000
    eval_every = 50
    seed = 0
    [problem]                       # any keyword of the problem's builder
    name = "logistic_regression"
    data = "digits"
    n_workers = 16
    batch_size = 8
    [topology]
    name = "ring"
    [network]                       # optional: jg.Network fields
    latency = 1e-4
    [[run]]                         # one table per algorithm to compare
    algorithm = "dpsgd"
    lr = 0.5
    [[run]]
    algorithm = "naive_compressed"
    lr = 0.5
    compressor = { name = "quantize", bits = 4 }
    label = "naive 4-bit"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

__all__ = ["main", "build_parser", "load_config", "run_config"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxgossip", description="Simulate decentralized and compressed distributed training.")
    p.add_argument("--no-cache", action="store_true",
                   help="do not use the persistent compilation cache (default folder: ~/.cache/jaxgossip/xla)")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run one or several algorithms on one problem and compare them")
    r.add_argument("--config", help="a TOML config file (see `jaxgossip run --help` and configs/)")
    r.add_argument("--problem", help="problem name (quadratic, logistic_regression, mlp)")
    r.add_argument("--data", help="data set (digits, breast_cancer, mnist1d, synthetic)")
    r.add_argument("--n", type=int, dest="n_workers", help="number of workers")
    r.add_argument("--batch-size", type=int, help="per-worker batch size")
    r.add_argument("--partition", help="iid, label or dirichlet")
    r.add_argument("--topology", help="ring, torus, complete, star, hypercube, exponential, erdos_renyi")
    r.add_argument("--algorithm", nargs="+", help="one or more algorithm names")
    r.add_argument("--lr", type=float, help="step size for every algorithm given by --algorithm")
    r.add_argument("--compressor", help="compressor name for the compressed algorithms, e.g. quantize")
    r.add_argument("--bits", type=float, help="bits of the quantize compressor")
    r.add_argument("--steps", type=int)
    r.add_argument("--eval-every", type=int)
    r.add_argument("--seed", type=int)
    r.add_argument("--latency", type=float, help="network latency per message (s)")
    r.add_argument("--bandwidth", type=float, help="network bandwidth (bytes/s)")
    r.add_argument("--backend", help="gossip backend: auto (default), dense, gather, shift or sparse")
    r.add_argument("--out", help="folder for results.json, metrics.csv and comparison.png")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _distributed_flags(r)

    sw = sub.add_parser("sweep", help="a grid of hyperparameters x seeds as one compiled program (resumable)")
    sw.add_argument("--config", help="a TOML config: problem, topology, [[run]] algorithms, and a [sweep] table "
                    "of name = [values] (plus seeds = [...])")
    sw.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                    help="a swept hyperparameter, e.g. lr=0.05,0.1 or compressor.bits=2,4,8 (repeatable)")
    sw.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the config's, else 0)")
    sw.add_argument("--steps", type=int)
    sw.add_argument("--eval-every", type=int)
    sw.add_argument("--backend", help="gossip backend: auto (default), dense, gather, shift or sparse")
    sw.add_argument("--out", default="sweep.csv", help="CSV of all runs; finished configurations are skipped on rerun")
    sw.add_argument("--shard-sweep", action="store_true", help="spread the configurations over all devices")
    _distributed_flags(sw)

    sub.add_parser("list", help="list algorithms, compressors, topologies, problems, data sets and reproductions")

    rp = sub.add_parser("reproduce", help="reproduce a paper's figure at laptop size")
    rp.add_argument("name", help="reproduction name (see `jaxgossip list`)")
    rp.add_argument("--size", default="small", help="test, small (default) or paper")
    rp.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: the reproduction's)")
    rp.add_argument("--out", default="results", help="output folder (default: results/)")
    return p


def _distributed_flags(parser):
    parser.add_argument("--distributed", action="store_true",
                        help="initialize jax.distributed first (multi-host; gloo collectives on CPU)")
    parser.add_argument("--coordinator", help="host:port of process 0 (with --distributed)")
    parser.add_argument("--num-processes", type=int, help="number of processes (with --distributed)")
    parser.add_argument("--process-id", type=int, help="this process's index (with --distributed)")


def _maybe_distributed(args):
    if getattr(args, "distributed", False):
        import jaxgossip as jg

        jg.distributed.initialize(args.coordinator, args.num_processes, args.process_id)


def _parse_grid(items) -> dict:
    grid = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not values:
            raise ValueError(f"--grid must look like NAME=V1,V2,..., got {item!r}.")
        try:
            grid[name.strip()] = [float(v) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"--grid {name}: values must be numbers, got {values!r}.") from None
    return grid


def _cmd_sweep(args) -> int:
    import jaxgossip as jg

    _maybe_distributed(args)
    cfg = load_config(args.config)
    for key in ("steps", "eval_every", "backend"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    cfg.setdefault("problem", {"name": "logistic_regression", "data": "digits", "n_workers": 16, "batch_size": 8})
    cfg.setdefault("run", [{"algorithm": "dpsgd", "lr": 0.1}])
    table = dict(cfg.get("sweep", {}))
    seeds = args.seeds or table.pop("seeds", [0])
    table.pop("seeds", None)
    grid = {**table, **_parse_grid(args.grid)}
    if not grid:
        raise ValueError("sweep: give a grid with --grid NAME=V1,V2 or a [sweep] table in the config.")
    prob_kw = dict(cfg["problem"])
    problem = jg.problems.get(prob_kw.pop("name", None), **prob_kw)
    topo_kw = dict(cfg.get("topology", {"name": "ring"}))
    topology = jg.topology.get(topo_kw.pop("name"), problem.n, **topo_kw)
    algos = {run.get("label") or run["algorithm"]: _build_algorithm(run) for run in cfg["run"]}
    t0 = time.perf_counter()
    df = jg.sweep(problem, algos, topology, steps=int(cfg.get("steps", 1000)), grid=grid, seeds=seeds,
                  eval_every=cfg.get("eval_every"), network=jg.Network(**cfg.get("network", {})),
                  compute=jg.ComputeModel(**cfg["compute"]) if "compute" in cfg else None, resume=args.out,
                  backend=cfg.get("backend", "auto"),
                  shard_sweep=args.shard_sweep, progress=True)
    final = df[df.step == df.step.max()]
    print(final.groupby(["label", *grid]).loss.agg(["mean", "std", "count"]).to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {args.out}; {time.perf_counter() - t0:.1f} s")
    return 0


def load_config(path: str | None) -> dict:
    if path is None:
        return {}
    import tomllib

    if not os.path.exists(path):
        raise SystemExit(f"jaxgossip: config file {path!r} not found.")
    with open(path, "rb") as f:
        return tomllib.load(f)


def _merge_flags(cfg: dict, args) -> dict:
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg.items()}
    for key in ("steps", "eval_every", "seed", "backend"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    default = {"name": "logistic_regression", "data": "digits", "n_workers": 16, "batch_size": 8}
    if args.problem and args.problem != "logistic_regression":
        default = {"name": args.problem}
    prob = cfg.setdefault("problem", default)
    if args.problem:
        prob["name"] = args.problem
    for key in ("data", "n_workers", "batch_size", "partition"):
        if getattr(args, key) is not None:
            prob[key] = getattr(args, key)
    topo = cfg.setdefault("topology", {"name": "ring"})
    if args.topology:
        topo["name"] = args.topology
    net = cfg.setdefault("network", {})
    if args.latency is not None:
        net["latency"] = args.latency
    if args.bandwidth is not None:
        net["bandwidth"] = args.bandwidth
    if args.algorithm:
        runs = []
        for name in args.algorithm:
            run = {"algorithm": name}
            if args.lr is not None:
                run["lr"] = args.lr
            if args.compressor or args.bits is not None:
                comp = {"name": args.compressor or "quantize"}
                if args.bits is not None:
                    comp["bits"] = args.bits
                run["compressor"] = comp
            runs.append(run)
        cfg["run"] = runs
    cfg.setdefault("run", [{"algorithm": "dpsgd", "lr": args.lr or 0.1}])
    return cfg


def _build_algorithm(run: dict):
    import jaxgossip as jg

    if "algorithm" not in run:
        raise ValueError(f"each [[run]] needs an `algorithm` name; got {run}.")
    kw = {k: v for k, v in run.items() if k not in ("algorithm", "label")}
    comp = kw.get("compressor")
    if isinstance(comp, str):
        comp = {"name": comp}
    if isinstance(comp, dict):
        comp = dict(comp)
        kw["compressor"] = jg.compressors.get(comp.pop("name"), **comp)
    return jg.algorithms.get(run["algorithm"], **kw)


def run_config(cfg: dict, progress: bool = True):
    """Build everything a config names (errors before any compile), run each algorithm, return the Results."""
    import jaxgossip as jg

    prob_kw = dict(cfg["problem"])
    problem = jg.problems.get(prob_kw.pop("name", None), **prob_kw)
    topo_kw = dict(cfg.get("topology", {"name": "ring"}))
    topology = jg.topology.get(topo_kw.pop("name"), problem.n, **topo_kw)
    network = jg.Network(**cfg.get("network", {}))
    compute = jg.ComputeModel(**cfg["compute"]) if "compute" in cfg else None
    algos = [(_build_algorithm(run), run.get("label")) for run in cfg["run"]]
    results = []
    for algo, label in algos:
        res = jg.simulate(problem, algo, topology, steps=int(cfg.get("steps", 1000)), seed=int(cfg.get("seed", 0)),
                          eval_every=cfg.get("eval_every"), network=network, compute=compute, progress=progress,
                          label=label or algo.name, backend=cfg.get("backend", "auto"))
        results.append(res)
    return problem, topology, results


def summary_table(results):
    """One row per run: final metrics, bits, simulated time, wall time."""
    import pandas as pd

    rows = []
    for r in results:
        row = {"run": r.label}
        for k in ("loss", "accuracy", "consensus", "suboptimality"):
            if k in r.metrics:
                row[k] = r.final(k)
        row["Mbits sent"] = r.final("bits") / 1e6
        row["sim time (s)"] = r.final("sim_time")
        row["wall (s)"] = r.wall_time
        row["diverged"] = f"step {r.diverged_step}" if r.diverged else "no"
        rows.append(row)
    return pd.DataFrame(rows)


def _write_outputs(out: str, results, title: str):
    import pandas as pd

    from jaxgossip.plots import plot_grid
    from jaxgossip.result import atomic_write

    os.makedirs(out, exist_ok=True)
    atomic_write(os.path.join(out, "results.json"), json.dumps([r.to_dict() for r in results], indent=1))
    atomic_write(os.path.join(out, "metrics.csv"), pd.concat([r.to_pandas() for r in results]).to_csv(index=False))
    fig = plot_grid(results, title=title)
    fig.savefig(os.path.join(out, "comparison.png"), dpi=120, bbox_inches="tight")
    return [os.path.join(out, f) for f in ("results.json", "metrics.csv", "comparison.png")]


def _cmd_run(args) -> int:
    _maybe_distributed(args)
    cfg = _merge_flags(load_config(args.config), args)
    t0 = time.perf_counter()
    problem, topology, results = run_config(cfg, progress=not args.no_progress)
    gossiping = any(r.config.get("kind", "decentralized") == "decentralized" for r in results)
    where = f"on {topology.name}" if gossiping else f"with {problem.n} workers (centralized / star: no gossip graph)"
    title = f"{problem.name} {where}"
    rho = f", rho={topology.rho:.4f}" if gossiping else ""
    print(f"\n{title}: n={problem.n}, d={problem.d}{rho}, steps={cfg.get('steps', 1000)}")
    print(summary_table(results).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        for path in _write_outputs(args.out, results, title):
            print(f"wrote {path}")
    print(f"total wall time {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_list(_args) -> int:
    import jaxgossip as jg

    sections = {
        "algorithms": sorted(jg.algorithms.REGISTRY),
        "compressors": sorted(jg.compressors.REGISTRY),
        "topologies": sorted(jg.topology.BUILDERS),
        "problems": sorted(jg.problems.REGISTRY),
        "data sets": list(jg.problems.DATASETS),
        "partitions": list(jg.problems.PARTITIONS),
        "reproductions": [f"{n}: {jg.reproduce.REGISTRY[n][1]}" for n in jg.reproduce.names()],
    }
    for title, items in sections.items():
        print(f"{title}:")
        for item in items:
            print(f"  {item}")
    return 0


def _cmd_reproduce(args) -> int:
    import jaxgossip as jg

    t0 = time.perf_counter()
    rep = jg.reproduce.run(args.name, size=args.size, seeds=args.seeds)
    print(f"\n{rep.name} ({args.size}):")
    print(rep.verdicts.to_string(index=False))
    for kind, path in rep.save(args.out).items():
        print(f"wrote {path}")
    print(f"{'all claims hold' if rep.holds else 'SOME CLAIMS DO NOT HOLD'}; {time.perf_counter() - t0:.1f} s")
    return 0 if rep.holds else 1


COMMANDS = {"run": _cmd_run, "sweep": _cmd_sweep, "list": _cmd_list, "reproduce": _cmd_reproduce}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.no_cache:
        from jaxgossip.cache import enable_compilation_cache

        enable_compilation_cache()
    try:
        return COMMANDS[args.command](args)
    except ValueError as err:  # bad input: a clear message, not a traceback
        print(f"jaxgossip: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
