"""The command line: ``jaxgossip run``, ``jaxgossip list``, ``jaxgossip reproduce NAME``.

``jaxgossip run`` takes flags or a TOML file (flags override the file's values). A TOML config::

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

``jaxgossip compare`` reads the same layout (its ``[[run]]`` tables also take ``grid = {...}``, and it takes
``seeds = [...]`` and the tuning keys; see ``jaxgossip compare --help``). ``imports = ["mymodule"]`` (or ``--import
mymodule``) imports modules first, so that algorithms they register with ``jg.algorithms.register`` can be named in
``algorithm = ...`` and ``--algorithm``.

Every key is checked: an unknown or misspelled key at any level (``[[runs]]``, ``[netwrok]``, ``lrr = 0.5``) is an
error that lists the valid keys, never silently ignored. ``n`` under ``[topology]`` must equal the problem's
``n_workers`` (or gives it, when the problem does not); the topology always has the problem's number of workers.

Per-algorithm flags apply to the algorithms that take the parameter and leave the others alone, so an uncompressed
baseline runs beside compressed algorithms (``--algorithm dpsgd dcd_psgd --bits 4``): ``--lr`` (algorithms with a
step size ``lr``), ``--consensus`` (a consensus step: choco_sgd, deepsqueeze), and the compressor flags
``--compressor``, ``--bits``, ``--k``, ``--fraction``, ``--compressor-arg NAME=VALUE`` (algorithms that take a
compressor). Without ``--algorithm`` they override the config's ``[[run]]`` tables the same way. A flag that no
algorithm of the run can take is an error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

__all__ = ["main", "build_parser", "load_config", "check_config", "run_config", "import_modules", "TOP_LEVEL_KEYS"]


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
    r.add_argument("--algorithm", nargs="+", help="one or more algorithm names (built-in, or registered by a module "
                   "given with --import)")
    _import_flag(r)
    r.add_argument("--lr", type=float, help="step size of every algorithm that takes one")
    r.add_argument("--consensus", type=float,
                   help="consensus step of the algorithms that have one (choco_sgd, deepsqueeze); default: chosen "
                        "from the compressor")
    r.add_argument("--compressor", help="compressor of the algorithms that take one, e.g. quantize, sign, top_k "
                   "(default quantize when a compressor parameter is given)")
    r.add_argument("--bits", type=_number, help="bits of the compressor (quantize, low_precision)")
    r.add_argument("--k", type=int, help="coordinates kept by top_k / random_k")
    r.add_argument("--fraction", type=float, help="fraction of coordinates kept by top_k / random_k")
    r.add_argument("--compressor-arg", action="append", default=[], metavar="NAME=VALUE",
                   help="any other compressor parameter, e.g. bucket=64 or scale=norm (repeatable)")
    r.add_argument("--steps", type=int)
    r.add_argument("--eval-every", type=int)
    r.add_argument("--seed", type=int)
    r.add_argument("--latency", type=float, help="network latency per message (s)")
    r.add_argument("--bandwidth", type=float, help="network bandwidth (bytes/s)")
    r.add_argument("--backend", help="gossip backend: auto (default), dense, gather, shift or sparse")
    r.add_argument("--out", help="folder for results.json, metrics.csv and the figure comparison.png")
    r.add_argument("--format", default="png", choices=("png", "pdf", "svg"),
                   help="format of the --out figure: png (default), pdf or svg")
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
    _import_flag(sw)
    _distributed_flags(sw)

    _import_flag(sub.add_parser("list", help="list algorithms, compressors, topologies, problems, data sets and "
                                "reproductions"))

    from jaxgossip import cli_compare

    cli_compare.add_parser(sub)
    rp = sub.add_parser("reproduce", help="reproduce a paper's figure at laptop size")
    rp.add_argument("name", help="reproduction name (see `jaxgossip list`)")
    rp.add_argument("--size", default="small", help="test, small (default) or paper")
    rp.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: the reproduction's)")
    rp.add_argument("--out", default="results", help="output folder (default: results/)")
    rp.add_argument("--format", default="png", choices=("png", "pdf", "svg"),
                    help="format of the figure: png (default), pdf or svg")
    rp.add_argument("--data-dir", help="directory of the data sets read from disk at --size paper (e.g. CIFAR-10's "
                    "python batches, MNIST's idx files); only for reproductions that take it")
    return p


def _import_flag(parser):
    parser.add_argument("--import", action="append", default=[], dest="imports", metavar="MODULE",
                        help="import MODULE first (repeatable): a module that registers algorithms with "
                             "jg.algorithms.register, which --algorithm and the config can then name")


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
    cfg.setdefault("problem", dict(DEFAULT_PROBLEM))
    cfg.setdefault("run", [{"algorithm": "dpsgd", "lr": 0.1}])
    check_config(cfg)
    table = dict(cfg.get("sweep", {}))
    seeds = args.seeds or table.pop("seeds", [0])
    table.pop("seeds", None)
    grid = {**table, **_parse_grid(args.grid)}
    if not grid:
        raise ValueError("sweep: give a grid with --grid NAME=V1,V2 or a [sweep] table in the config.")
    problem, topology = _build_problem_and_topology(cfg)
    algos = {run.get("label") or run["algorithm"]: _build_algorithm(run, i) for i, run in enumerate(cfg["run"])}
    t0 = time.perf_counter()
    df = jg.sweep(problem, algos, topology, steps=int(cfg.get("steps", 1000)), grid=grid, seeds=seeds,
                  eval_every=cfg.get("eval_every"), network=jg.Network(**cfg.get("network", {})),
                  compute=_build_compute(cfg), resume=args.out,
                  backend=cfg.get("backend", "auto"),
                  shard_sweep=args.shard_sweep, progress=True)
    final = df[df.step == df.step.max()]
    from jaxgossip.sweep import hp_column

    print(final.groupby(["label", *[hp_column(k) for k in grid]]).loss.agg(["mean", "std", "count"]).to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {args.out}; {time.perf_counter() - t0:.1f} s")
    return 0


# ---- the config: its keys, checked at every level --------------------------------------------------------------------
#: The top-level keys of a config and what each holds.
TOP_LEVEL_KEYS = {
    "steps": "number of iterations (int >= 1)",
    "eval_every": "evaluate the metrics every this many steps (int >= 1)",
    "seed": "the run seed (int)",
    "backend": "gossip backend (auto, dense, gather, shift, sparse)",
    "problem": "table: name plus the problem builder's keywords",
    "topology": "table: name plus the topology builder's keywords",
    "network": "table: jg.Network fields",
    "compute": "table: jg.ComputeModel fields",
    "run": "array of tables [[run]]: algorithm, label, the algorithm's parameters",
    "sweep": "table for `jaxgossip sweep`: hyperparameter = [values], seeds = [...]",
    "imports": "array of module names imported first (modules that call jg.algorithms.register)",
}
TABLES = ("problem", "topology", "network", "compute", "sweep")
DEFAULT_PROBLEM = {"name": "logistic_regression", "data": "digits", "n_workers": 16, "batch_size": 8}


def _suggest(word: str, valid) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_keys(where: str, given, valid) -> None:
    """A ValueError naming every unknown key of ``given`` and listing ``valid``."""
    unknown = [k for k in given if k not in valid]
    if unknown:
        names = ", ".join(f"{k!r}{_suggest(k, valid)}" for k in unknown)
        raise ValueError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {names}; valid keys: "
                         f"{', '.join(valid)}.")


def _signature_keys(obj) -> list[str]:
    import inspect

    return list(inspect.signature(obj).parameters)


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"config: {name} must be an integer >= {low}, got {value!r}.")


def check_config(cfg: dict) -> dict:
    """Check every key of a config (a dict as ``tomllib`` reads it) before anything is built; returns it.

    Unknown keys are errors at the top level (:data:`TOP_LEVEL_KEYS`), in ``[network]`` and ``[compute]`` (the fields
    of :class:`jaxgossip.Network` and :class:`jaxgossip.ComputeModel`) and in each ``[[run]]`` (``algorithm``,
    ``label`` and the algorithm's parameters); ``[problem]``, ``[topology]`` and compressor tables are checked
    against their builders' keywords when they are built. Each error lists the valid keys.

    Raises:
      ValueError: naming the key, where it is, and the keys allowed there.
    """
    import jaxgossip as jg

    if not isinstance(cfg, dict):
        raise ValueError(f"config must be a table (dict), got {type(cfg).__name__}.")
    _check_keys("config", cfg, list(TOP_LEVEL_KEYS))
    import_modules(cfg.get("imports"), "config: imports")  # first: they register the algorithms the runs name
    for name in TABLES:
        if name in cfg and not isinstance(cfg[name], dict):
            raise ValueError(f"config: {name} must be a table [{name}], got {cfg[name]!r}.")
    if "steps" in cfg:
        _check_int("steps", cfg["steps"], 1)
    if cfg.get("eval_every") is not None:
        _check_int("eval_every", cfg["eval_every"], 1)
    if "seed" in cfg:
        _check_int("seed", cfg["seed"], 0)
    if "backend" in cfg and not isinstance(cfg["backend"], str):
        raise ValueError(f"config: backend must be a string, got {cfg['backend']!r}.")
    if "network" in cfg:
        _check_keys("[network]", cfg["network"], _signature_keys(jg.Network))
    if "compute" in cfg:
        _check_keys("[compute]", cfg["compute"], _signature_keys(jg.ComputeModel))
    if "run" in cfg:
        runs = cfg["run"]
        if isinstance(runs, dict):
            raise ValueError("config: run must be an array of tables: write [[run]] (one per algorithm), not [run].")
        if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
            raise ValueError(f"config: run must be a non-empty array of tables [[run]], got {runs!r}.")
        for i, run in enumerate(runs):
            _check_run_keys(run, i)
    return cfg


def _check_run_keys(run: dict, i: int) -> None:
    import jaxgossip as jg

    where = f"[[run]] number {i + 1}"
    if "algorithm" not in run:
        raise ValueError(f"{where} needs an `algorithm` name (one of {sorted(jg.algorithms.REGISTRY)}); got {run}.")
    name = run["algorithm"]
    if name not in jg.algorithms.REGISTRY:
        raise ValueError(f"{where}: algorithm must be one of {sorted(jg.algorithms.REGISTRY)}, got {name!r} (an "
                         "algorithm of your own: name its module in imports = [...] or --import).")
    if "grid" in run:
        raise ValueError(f"{where}: grid = {{...}} is read by `jaxgossip compare` (which tunes each run on its grid); "
                         "`jaxgossip run` runs one setting (and `jaxgossip sweep` takes a [sweep] table): drop it.")
    import inspect

    builder = jg.algorithms.REGISTRY[name]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(builder).parameters.values()):
        return  # takes any keyword: the builder checks its own
    params = _signature_keys(builder)
    unknown = [k for k in run if k not in params and k not in ("algorithm", "label")]
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise ValueError(f"{where}: algorithm {name!r} has no parameter {names}; it takes {', '.join(params)} "
                         f"(a [[run]] table also takes `algorithm` and `label`)"
                         f"{_suggest(unknown[0], params + ['label'])}.")


def read_toml(path: str, prog: str = "jaxgossip") -> dict:
    """A TOML file as a dict: a missing file exits with a message, malformed TOML is a ValueError naming the file."""
    import tomllib

    if not os.path.exists(path):
        raise SystemExit(f"{prog}: config file {path!r} not found.")
    with open(path, "rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"config file {path!r} is not valid TOML: {err}") from None


def import_modules(names, where: str = "--import", folder: str | None = None) -> list:
    """Import the modules a config's ``imports = [...]`` or the ``--import`` flags name (modules that call
    ``jg.algorithms.register``), so that their algorithms can be named; returns the modules.

    A module is looked up on ``sys.path`` with the current folder (and ``folder``, a config file's own, when given)
    in front, so ``mymodule.py`` next to the config or in the working folder is found.

    Raises:
      ValueError: ``names`` is not a list of module names, or a module cannot be imported (naming it).
    """
    import importlib

    if names is None:
        return []
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n
                                                                                   for n in names):
        raise ValueError(f"{where} must be a list of module names (e.g. [\"mymodule\"]), got {names!r}.")
    extra = [p for p in (os.getcwd(), folder) if p and p not in sys.path]
    sys.path[:0] = extra
    try:
        modules = []
        for name in names:
            try:
                modules.append(importlib.import_module(name))
            except ImportError as err:
                raise ValueError(f"{where}: cannot import {name!r} ({err}); give a module importable from the "
                                 f"current folder or the Python path.") from None
        return modules
    finally:
        for p in extra:
            sys.path.remove(p)


def load_config(path: str | None) -> dict:
    """Read a TOML config and check its keys (:func:`check_config`); ``{}`` for no file. The modules of its
    ``imports = [...]`` are imported first (looked up next to the file too)."""
    if path is None:
        return {}
    cfg = read_toml(path)
    try:
        if isinstance(cfg, dict):
            import_modules(cfg.get("imports"), "config: imports", os.path.dirname(os.path.abspath(path)))
        return check_config(cfg)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


# ---- flags -----------------------------------------------------------------------------------------------------------
def _number(text: str):
    """A flag value as an int when it is one, else a float."""
    with contextlib.suppress(ValueError):
        return int(text)
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _value(text: str):
    """A ``--compressor-arg`` value: int, float, true / false, else the string itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return _number(text)
    except argparse.ArgumentTypeError:
        return text


def _compressor_flags(args) -> tuple[str | None, dict]:
    """(name or None, parameters) that the compressor flags give."""
    params = {}
    for item in getattr(args, "compressor_arg", None) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"--compressor-arg must look like NAME=VALUE (e.g. bucket=64), got {item!r}.")
        params[key.strip()] = _value(value.strip())
    for key in ("bits", "k", "fraction"):
        if getattr(args, key, None) is not None:
            params[key] = getattr(args, key)
    return getattr(args, "compressor", None), params


def _takes(algorithm: str, param: str) -> bool:
    import jaxgossip as jg

    builder = jg.algorithms.REGISTRY.get(algorithm)
    return builder is not None and param in _signature_keys(builder)


def _takers(param: str) -> list[str]:
    import jaxgossip as jg

    return sorted(a for a in jg.algorithms.REGISTRY if _takes(a, param))


def _apply_run_flags(runs: list[dict], args) -> list[dict]:
    """Each per-algorithm flag applied to the runs whose algorithm takes that parameter (copies of the runs).

    A flag that none of the runs' algorithms takes is an error naming the algorithms that would take it.
    """
    import jaxgossip as jg

    runs = [dict(r) for r in runs]
    algos = [r.get("algorithm") for r in runs]
    for a in algos:  # an unknown name: the registry's error, not a confusing message about a flag
        if a not in jg.algorithms.REGISTRY:
            raise ValueError(f"algorithm must be one of {sorted(jg.algorithms.REGISTRY)}, got {a!r}.")

    def need(flag, param):
        if not any(_takes(a, param) for a in algos):
            raise ValueError(f"{flag} applies to algorithms that take `{param}` ({', '.join(_takers(param))}); "
                             f"none of {', '.join(algos)} does.")

    for flag, param in (("--lr", "lr"), ("--consensus", "consensus")):
        value = getattr(args, param, None)
        if value is None:
            continue
        need(flag, param)
        for r in runs:
            if _takes(r["algorithm"], param):
                r[param] = value
    name, params = _compressor_flags(args)
    if name is not None or params:
        given = (["--compressor"] if name is not None else []) + [f"--{k.replace('_', '-')}" for k in params]
        need(" / ".join(given), "compressor")
        for r in runs:
            if not _takes(r["algorithm"], "compressor"):
                continue
            old = r.get("compressor")
            old = {"name": old} if isinstance(old, str) else dict(old or {})
            if name is not None and old.get("name") != name:
                old = {"name": name}  # another compressor: the old one's parameters do not carry over
            comp = {"name": old.get("name") or "quantize", **{k: v for k, v in old.items() if k != "name"}, **params}
            r["compressor"] = comp
    return runs


def _merge_flags(cfg: dict, args) -> dict:
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg.items()}
    for key in ("steps", "eval_every", "seed", "backend"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    default = dict(DEFAULT_PROBLEM)
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
    if args.n_workers is not None:
        topo.pop("n", None)  # --n sets the number of workers of both
    net = cfg.setdefault("network", {})
    if args.latency is not None:
        net["latency"] = args.latency
    if args.bandwidth is not None:
        net["bandwidth"] = args.bandwidth
    if args.algorithm:
        cfg["run"] = [{"algorithm": name} for name in args.algorithm]
    cfg.setdefault("run", [{"algorithm": "dpsgd", "lr": 0.1}])
    check_config(cfg)
    cfg["run"] = _apply_run_flags(cfg["run"], args)
    return cfg


# ---- building what a config names ------------------------------------------------------------------------------------
def _build_algorithm(run: dict, i: int = 0):
    import jaxgossip as jg

    _check_run_keys(run, i)
    kw = {k: v for k, v in run.items() if k not in ("algorithm", "label")}
    comp = kw.get("compressor")
    if isinstance(comp, str):
        comp = {"name": comp}
    if isinstance(comp, dict):
        comp = dict(comp)
        if "name" not in comp:
            raise ValueError(f"[[run]] number {i + 1}: a compressor table needs a `name` (one of "
                             f"{sorted(jg.compressors.REGISTRY)}), got {comp}.")
        kw["compressor"] = jg.compressors.get(comp.pop("name"), **comp)
    return jg.algorithms.get(run["algorithm"], **kw)


def _build_problem_and_topology(cfg: dict):
    """The problem and the topology a config names. ``n`` under ``[topology]`` gives the problem's ``n_workers``
    when the problem does not set it, and must equal it otherwise (the graph has one node per worker)."""
    import jaxgossip as jg

    prob_kw = dict(cfg["problem"])
    topo_kw = dict(cfg.get("topology") or {"name": "ring"})
    name = topo_kw.pop("name", "ring")
    n = topo_kw.pop("n", None)
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"[topology]: n must be a positive integer, got {n!r}.")
        given = prob_kw.get("n_workers")
        if given is None:
            prob_kw["n_workers"] = n
        elif given != n:
            raise ValueError(f"[topology]: n = {n} but the problem has n_workers = {given}; the topology takes its "
                             f"number of nodes from the problem: drop n from [topology] or make the two equal.")
    problem = jg.problems.get(prob_kw.pop("name", None), **prob_kw)
    return problem, jg.topology.get(name, problem.n, **topo_kw)


def _build_compute(cfg: dict):
    import jaxgossip as jg

    if "compute" not in cfg:
        return None
    kw = dict(cfg["compute"])
    if isinstance(kw.get("stragglers"), list):  # TOML has arrays, ComputeModel takes a tuple of indices
        kw["stragglers"] = tuple(kw["stragglers"])
    return jg.ComputeModel(**kw)


def run_config(cfg: dict, progress: bool = True):
    """Build everything a config names (errors before any compile), run each algorithm, return the Results."""
    import jaxgossip as jg

    check_config(cfg)
    if "problem" not in cfg or "run" not in cfg:
        raise ValueError("config: run_config needs a [problem] table and at least one [[run]].")
    problem, topology = _build_problem_and_topology(cfg)
    network = jg.Network(**cfg.get("network", {}))
    compute = _build_compute(cfg)
    algos = [(_build_algorithm(run, i), run.get("label")) for i, run in enumerate(cfg["run"])]
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


def _write_outputs(out: str, results, title: str, format: str = "png"):
    import matplotlib.pyplot as plt
    import pandas as pd

    from jaxgossip.plots import plot_grid, save
    from jaxgossip.result import atomic_write

    os.makedirs(out, exist_ok=True)
    atomic_write(os.path.join(out, "results.json"), json.dumps([r.to_dict() for r in results], indent=1))
    atomic_write(os.path.join(out, "metrics.csv"), pd.concat([r.to_pandas() for r in results]).to_csv(index=False))
    panels = [(x, y) for x, y in (("step", "loss"), ("sim_time", "loss"), ("bits", "loss"), ("step", "consensus"))
              if all(x in r.metrics and y in r.metrics for r in results)]
    fig = plot_grid(results, panels=panels, title=title)
    figure = save(fig, os.path.join(out, f"comparison.{format}"), format=format)
    plt.close(fig)
    return [os.path.join(out, f) for f in ("results.json", "metrics.csv")] + [figure]


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
        for path in _write_outputs(args.out, results, title, getattr(args, "format", "png")):
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
    kwargs = {}
    if args.data_dir is not None:
        import inspect

        if "data_dir" not in inspect.signature(jg.reproduce.get(args.name)).parameters:
            raise ValueError(f"reproduce {args.name}: --data-dir is not used by this reproduction (it builds its data "
                             "itself); drop the flag.")
        kwargs["data_dir"] = args.data_dir
    try:
        rep = jg.reproduce.run(args.name, size=args.size, seeds=args.seeds, **kwargs)
    except FileNotFoundError as err:  # missing data files: a clear message, not a traceback
        print(f"jaxgossip: error: {err}", file=sys.stderr)
        return 2
    print(f"\n{rep.name} ({args.size}):")
    print(rep.verdicts.to_string(index=False))
    for kind, path in rep.save(args.out, format=args.format).items():
        print(f"wrote {path}")
    print(f"{'all claims hold' if rep.holds else 'SOME CLAIMS DO NOT HOLD'}; {time.perf_counter() - t0:.1f} s")
    return 0 if rep.holds else 1


def _cmd_compare(args):
    from jaxgossip import cli_compare

    return cli_compare.main(args)


COMMANDS = {"run": _cmd_run, "sweep": _cmd_sweep, "list": _cmd_list, "reproduce": _cmd_reproduce,
            "compare": _cmd_compare}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.no_cache:
        from jaxgossip.cache import enable_compilation_cache

        enable_compilation_cache()
    try:
        import_modules(getattr(args, "imports", None) or None, "--import")
        return COMMANDS[args.command](args)
    except ValueError as err:  # bad input: a clear message, not a traceback
        print(f"jaxgossip: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
