"""``jaxgossip compare --config FILE``: tune each algorithm on its own grid, report each at its best (jg.compare).

The config is TOML::

    steps = 500
    eval_every = 25
    seeds = [0, 1, 2, 3, 4]
    redraw_data = true            # each seed redraws the data partition (the problem is built with seed = s)
    criterion = "final"           # or "steps", "bits", "sim_time" (then give target)
    metric = "suboptimality"      # optional; default suboptimality where known, else loss
    # target = 0.05

    [problem]                     # jg.problems.get(name, **rest)
    name = "logistic_regression"
    data = "digits"
    n_workers = 16
    batch_size = 8

    [topology]                    # jg.topology.get(name, n, **rest)
    name = "ring"

    [network]                     # optional, jg.Network(**table)
    latency = 1e-4

    [[run]]                       # one per label, as in `jaxgossip run` configs
    label = "CHOCO-SGD"
    algorithm = "choco_sgd"       # jg.algorithms.get(algorithm, **parameters)
    lr = 0.1
    consensus = 0.5
    compressor = { name = "quantize", bits = 4 }
    grid = { lr = [0.05, 0.1, 0.2], consensus = [0.2, 0.5] }

    [[run]]
    label = "D-PSGD"
    algorithm = "dpsgd"
    grid = { lr = [0.05, 0.1, 0.2] }

``imports = ["mymodule"]`` (or ``--import mymodule``) imports modules that register algorithms
(``jg.algorithms.register``) first. The layout is the one ``jaxgossip run`` reads (``[problem]``, ``[topology]``,
``[network]``, ``[compute]``, ``[[run]]`` with ``algorithm =``); the old ``[[algorithm]]`` tables with ``name =`` are
still read, with a DeprecationWarning.

``--out DIR`` writes the table, the tuning scores, the curves and every run (CSV), ``comparison.json`` (with the full
configuration of every run) and the figure (``--format png pdf svg``).
"""

from __future__ import annotations

import os
import time

__all__ = ["add_parser", "main", "load", "build"]

TOP_KEYS = ("steps", "eval_every", "seeds", "data_seeds", "redraw_data", "criterion", "metric", "target", "backend",
            "problem", "topology", "network", "compute", "run", "batch_size", "divergence_threshold",
            "consensus_threshold", "imports", "algorithm")


def add_parser(subparsers):
    """Add the ``compare`` subcommand to an argparse subparsers object; returns its parser."""
    import argparse

    p = subparsers.add_parser("compare", help="tune each algorithm on its own grid over seeds; report each at its best",
                              description=__doc__.replace("``", "`"),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="TOML file, as the example above")
    p.add_argument("--import", action="append", default=[], dest="imports", metavar="MODULE",
                   help="import MODULE first (repeatable): a module that registers algorithms")
    p.add_argument("--out", default=None, help="folder for the CSV, JSON and figure files")
    p.add_argument("--steps", type=int, default=None, help="override the config's steps")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="override the config's seeds")
    p.add_argument("--format", nargs="+", default=["png"], choices=["png", "pdf", "svg"], help="figure formats")
    p.set_defaults(func=main)
    return p


def load(path: str) -> dict:
    """Read and check a compare config (clear errors naming the key)."""
    from jaxgossip.cli import read_toml

    import warnings

    from jaxgossip.cli import _check_run_keys, import_modules, read_toml

    cfg = read_toml(path, "jaxgossip compare")
    unknown = sorted(set(cfg) - set(TOP_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; a compare config takes "
                         f"{[k for k in TOP_KEYS if k != 'algorithm']}.")
    import_modules(cfg.get("imports"), f"{path}: imports", os.path.dirname(os.path.abspath(path)))
    if "algorithm" in cfg:  # the old layout: [[algorithm]] name = ...
        if "run" in cfg:
            raise ValueError(f"{path}: give the algorithms as [[run]] tables (algorithm = ...), not both [[run]] "
                             "and the old [[algorithm]] tables.")
        old = cfg.pop("algorithm")
        if not isinstance(old, list) or not all(isinstance(a, dict) for a in old):
            raise ValueError(f"{path}: give one [[run]] table per label (with algorithm = ... and optional grid = "
                             "{...}).")
        warnings.warn(f"{path}: [[algorithm]] tables with name = ... are deprecated; write [[run]] tables with "
                      "algorithm = ... (the layout `jaxgossip run` reads).", DeprecationWarning, stacklevel=2)
        cfg["run"] = [{("algorithm" if k == "name" else k): v for k, v in a.items()} for a in old]
    runs = cfg.get("run")
    if not isinstance(runs, list) or not runs or not all(isinstance(a, dict) for a in runs):
        raise ValueError(f"{path}: give one [[run]] table per label (with algorithm = ... and optional grid = "
                         "{...}).")
    for i, a in enumerate(runs):
        if "algorithm" not in a:
            raise ValueError(f"{path}: [[run]] number {i + 1} needs an algorithm (e.g. algorithm = \"choco_sgd\").")
        if "grid" in a and not isinstance(a["grid"], dict):
            raise ValueError(f"{path}: [[run]] {a.get('label', a['algorithm'])!r}: grid must be a table of "
                             "name -> list of values.")
        try:
            _check_run_keys({k: v for k, v in a.items() if k != "grid"}, i)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    return cfg


def _compressor(spec):
    import jaxgossip as jg

    if isinstance(spec, str):
        return jg.compressors.get(spec)
    spec = dict(spec)
    return jg.compressors.get(spec.pop("name"), **spec)


def build(cfg: dict) -> dict:
    """The keyword arguments of :func:`jaxgossip.compare.compare` a checked config describes."""
    import jaxgossip as jg

    prob_kw = dict(cfg.get("problem", {"name": "logistic_regression", "data": "digits", "n_workers": 16,
                                       "batch_size": 8}))
    name = prob_kw.pop("name", "logistic_regression")
    if cfg.get("redraw_data", True):
        def problem(seed):
            return jg.problems.get(name, **{**prob_kw, "seed": seed})
        n = problem(0).n
    else:
        problem = jg.problems.get(name, **prob_kw)
        n = problem.n
    topo_kw = dict(cfg.get("topology", {"name": "ring"}))
    topology = jg.topology.get(topo_kw.pop("name"), n, **topo_kw)
    algorithms = {}
    for a in cfg["run"]:
        a = dict(a)
        label, grid = a.pop("label", a["algorithm"]), a.pop("grid", {})
        algo_name = a.pop("algorithm")
        if "compressor" in a:
            a["compressor"] = _compressor(a["compressor"])
        algorithms[str(label)] = (jg.algorithms.get(algo_name, **a), dict(grid))
    kw = dict(problem=problem, algorithms=algorithms, topology=topology, steps=int(cfg.get("steps", 500)),
              seeds=cfg.get("seeds", [0, 1, 2]), criterion=cfg.get("criterion", "final"), metric=cfg.get("metric"),
              target=cfg.get("target"), eval_every=cfg.get("eval_every"), backend=cfg.get("backend", "auto"),
              data_seeds=cfg.get("data_seeds"), batch_size=cfg.get("batch_size"),
              divergence_threshold=cfg.get("divergence_threshold"),
              consensus_threshold=cfg.get("consensus_threshold"))
    if "network" in cfg:
        kw["network"] = jg.Network(**cfg["network"])
    if "compute" in cfg:
        kw["compute"] = jg.ComputeModel(**cfg["compute"])
    return kw


def main(args) -> int:
    """Run the comparison a config describes; print the table; write the files to ``--out``."""
    from jaxgossip.compare import compare

    cfg = load(args.config)
    if args.steps is not None:
        cfg["steps"] = args.steps
    if args.seeds:
        cfg["seeds"] = list(args.seeds)
    t0 = time.perf_counter()
    result = compare(**build(cfg), progress=True)
    cols = [c for c in result.table.columns if not c.endswith("_std")]
    print(result.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        paths = result.save(args.out, formats=tuple(args.format))
        print(f"wrote {', '.join(sorted(os.path.basename(p) for p in paths.values()))} to {args.out}")
    print(f"{time.perf_counter() - t0:.1f} s")
    return 0
