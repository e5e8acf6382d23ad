"""Any network as a problem: ``from_flax`` (linen or nnx modules) and ``from_function`` (any JAX model).

Both return a :class:`~jaxgossip.problems.Problem` that every algorithm, compressor, sweep and checkpoint runs on
unchanged. Parameters are any pytree, flattened to the (n, d) stack by a :class:`~jaxgossip.problems.layout.Layout`
kept on the problem (``problem.layout``: leaf names, shapes, offsets). Mutable model state (BatchNorm statistics)
lives per worker beside the stack and is updated by each worker's own batches; dropout and augmentation get worker
i's own key at every step (see :mod:`jaxgossip.problems._base`). Data keep their shapes ((N, H, W, C) images,
(N, L, C) sequences) and are used as given unless ``standardize`` / ``normalize`` asks.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np

from jaxgossip._host import to_device
from jaxgossip.problems import data as data_lib
from jaxgossip.problems import losses as losses_lib
from jaxgossip.problems import _checks as checks
from jaxgossip.problems._base import Problem, ProblemSpec
from jaxgossip.problems.layout import Layout
from jaxgossip.problems.nets import FunctionNet, LinenNet, NNXNet, conv_lowering, train_flag

__all__ = ["from_flax", "from_function", "check_problem"]

WORKER_MAPS = ("auto", "vmap", "map")
CONVS = ("auto", "im2col", "xla")


def resolve_worker_map(worker_map: str, backend: str | None = None) -> str:
    """``"auto"``: ``"map"`` on the CPU backend, ``"vmap"`` elsewhere (see :func:`from_flax`); others as given."""
    if worker_map != "auto":
        return worker_map
    return "map" if (backend or jax.default_backend()) == "cpu" else "vmap"


def _check_options(name, batch_size, eval_batch, worker_map, augment, reg):
    if not (batch_size == "full" or (isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool)
                                     and batch_size >= 1)):
        raise ValueError(f"{name}: batch_size must be a positive integer or 'full', got {batch_size!r}.")
    if eval_batch is not None and (isinstance(eval_batch, bool) or not isinstance(eval_batch, (int, np.integer))
                                   or eval_batch < 1):
        raise ValueError(f"{name}: eval_batch must be a positive integer or None, got {eval_batch!r}.")
    if worker_map not in WORKER_MAPS:
        raise ValueError(f"{name}: worker_map must be one of {WORKER_MAPS}, got {worker_map!r}.")
    if augment is not None and not callable(augment):
        raise ValueError(f"{name}: augment must be a callable augment(key, batch) -> batch (e.g. "
                         f"jg.data.random_crop(4)), got {type(augment).__name__}.")
    if augment is not None:
        try:
            hash(augment)
        except TypeError:
            raise ValueError(f"{name}: augment must be hashable (a frozen dataclass or a module-level function); "
                             "use jg.data's augmentations or jg.data.compose.") from None
    if not (isinstance(reg, (int, float, np.floating, np.integer)) and 0 <= reg < float("inf")):
        raise ValueError(f"{name}: reg must be a finite number >= 0, got {reg!r}.")


def _load(name, data, seed, test_fraction, num_samples, standardize, normalize):
    Xtr, ytr, Xte, yte = data_lib.load(data, test_fraction=test_fraction, seed=seed, num_samples=num_samples,
                                       standardize=standardize, normalize=normalize)
    if np.issubdtype(Xtr.dtype, np.floating) and not np.all(np.isfinite(Xtr)):
        raise ValueError(f"{name}: the training features hold NaN or infinite values.")
    return Xtr, ytr, Xte, yte


def _check_common(name, data, n_workers, partition, alpha, seed, init_seed, test_fraction, num_samples, standardize,
                  share_model_state, classification, label):
    """The range checks from_flax and from_function share, before any data is loaded; returns the resolved
    ``(alpha, init_seed)``."""
    checks.data_name(name, data)
    checks.integer(name, "n_workers", n_workers, 1)
    alpha = checks.partition_alpha(name, partition, alpha)
    checks.seed(name, "seed", seed)
    init_seed = checks.seed(name, "init_seed", init_seed, allow_none=True)
    checks.test_fraction(name, test_fraction)
    checks.num_samples(name, data, num_samples)
    checks.flag(name, "standardize", standardize)
    checks.flag(name, "share_model_state", share_model_state)
    checks.flag(name, "classification", classification, allow_none=True)
    if label is not None and not isinstance(label, str):
        raise ValueError(f"{name}: name must be a string or None, got {label!r}.")
    return alpha, (seed if init_seed is None else init_seed)


def _build(name, net, params_flat, model_state, data, *, loss, n_workers, partition, alpha, batch_size, reg, seed,
           test_fraction, num_samples, standardize, normalize, augment, share_model_state, eval_batch, worker_map,
           classification, label, stochastic, grad_noise=0.0, spec=None, conv_variant=None):
    """The Problem of a network adapter and its data, validated with one abstract evaluation; ``"auto"`` lowerings
    chosen by :func:`_choose_lowering` (``conv_variant(c)``: the net with convolution lowering c, where ``conv`` was
    ``"auto"``; None otherwise)."""
    _check_options(name, batch_size, eval_batch, worker_map, augment, reg)
    loss_fn, classification = losses_lib.get(loss, classification)
    Xtr, ytr, Xte, yte = _load(name, data, seed, test_fraction, num_samples, standardize, normalize)
    if classification:
        ytr = data_lib.class_labels(ytr, f"{name}: the training labels")
        yte = data_lib.class_labels(yte, f"{name}: the test labels")
    shards = data_lib.partition(Xtr, ytr, n_workers, partition, alpha, seed)
    counts = shards[2]
    full = batch_size == "full"
    B = int(counts.max()) if full else int(batch_size)
    if not full and B > counts.min():
        raise ValueError(f"{name}: batch_size={B} is larger than the smallest worker's data ({int(counts.min())} "
                         f"samples); use batch_size <= {int(counts.min())}, 'full', or fewer workers.")
    problem = Problem(
        data_x=to_device(shards[0], np.float32), data_y=to_device(shards[1], np.float32 if not classification else None),
        counts=to_device(counts, np.int32), test_x=to_device(Xte, np.float32),
        test_y=to_device(yte, np.float32 if not classification else None), x0=to_device(params_flat, np.float32),
        reg=to_device(reg, np.float32), x_star=None, f_star=None, model=net, loss=loss_fn, batch_size=B,
        grad_noise=float(grad_noise), name=label, classification=classification,
        model_state=None if model_state is None else jax.tree.map(to_device, model_state), net=True,
        stochastic_model=bool(stochastic), augment=augment, layout=net.layout, full_batch=full,
        eval_batch=None if eval_batch is None else int(eval_batch), share_model_state=bool(share_model_state),
        worker_map=resolve_worker_map(worker_map), spec=spec,
    )
    out = check_problem(problem, name)
    if classification and loss == "cross_entropy":
        k = out.shape[-1]
        data_lib.class_labels(np.asarray(ytr), f"{name}: the training labels", num_classes=k)
        data_lib.class_labels(np.asarray(yte), f"{name}: the test labels", num_classes=k)
    return _choose_lowering(problem, name, conv_variant, worker_map)


def _choose_lowering(problem, builder, conv_variant, worker_map):
    """The problem with its ``"auto"`` lowerings (convolution: ``conv_variant`` given; worker map: ``worker_map ==
    "auto"``) chosen by timing the candidates on this device, once per signature (see :mod:`jaxgossip.lowering`); as
    built (the platform rule) with ``JAXGOSSIP_LOWERING=platform`` or a single candidate."""
    import itertools

    from jaxgossip import lowering
    from jaxgossip._record import jsonable

    if conv_variant is None and worker_map != "auto":
        return problem
    net = problem.model
    if lowering.mode() == "platform" or (conv_variant is None and problem.n < 2):
        return lowering.chosen(problem, "platform")
    convs = [getattr(net, "conv", None)]
    if conv_variant is not None and (lowering.conv_count(problem.replace(model=conv_variant("xla")))
                                     > lowering.conv_count(problem.replace(model=conv_variant("im2col")))):
        convs = ["im2col", "xla"]  # the choice changes the program
    maps = ["vmap", "map"] if worker_map == "auto" and problem.n > 1 else [problem.worker_map]
    variants = {}
    for c, m in itertools.product(convs, maps):
        variants[f"conv={c},worker_map={m}"] = problem.replace(
            model=conv_variant(c) if len(convs) > 1 else net, worker_map=m)
    if len(variants) < 2:  # nothing to choose: a worker map left at "auto" took the platform rule, or all was given
        return lowering.chosen(problem, "platform") if worker_map == "auto" else problem
    default = f"conv={convs[0] if len(convs) == 1 else conv_lowering('auto')},worker_map={problem.worker_map}"
    variants = {default: variants[default], **variants}  # the platform rule first: it wins ties
    module = getattr(net, "module", None)
    signature = {"builder": builder, "model": jsonable(module) if module is not None else type(net).__qualname__,
                 "apply_fn": jsonable(getattr(net, "apply_fn", None)), "graph": jsonable(getattr(net, "graphdef", None)),
                 "parameters": [list(s.shape) for s in net.layout.segments] if net.layout is not None else problem.d,
                 "samples": list(problem.data_x.shape), "sample_dtype": str(problem.data_x.dtype),
                 "batch": problem.batch_size, "full_batch": problem.full_batch, "augment": jsonable(problem.augment),
                 "stochastic": problem.stochastic_model, "model_state": problem.has_model_state,
                 "loss": jsonable(problem.loss), "candidates": list(variants)}
    small = None if problem.full_batch else lowering.probe_batch(problem.batch_size)
    probes = None if small is None else {
        k: (lambda p=p: lowering.gradient_runner(p.replace(batch_size=small))) for k, p in variants.items()}
    record = lowering.resolve({k: (lambda p=p: lowering.gradient_runner(p)) for k, p in variants.items()}, signature,
                              default, what=problem.name, probes=probes)
    return lowering.chosen(variants[record["choice"]], record["by"])


def check_problem(problem: Problem, name: str = "simulate"):
    """Check a problem's data, model and test set against each other with one abstract evaluation
    (``jax.eval_shape``: nothing runs or compiles); returns the outputs' shape of a training batch.

    Raises:
      ValueError: naming what does not fit (the test samples' shape, the model on a batch, the loss's output).
    """
    sample = tuple(problem.data_x.shape[2:])
    if problem.test_x.shape[0] > 0 and tuple(problem.test_x.shape[1:]) != sample:
        raise ValueError(f"{name}: the test samples have shape {tuple(problem.test_x.shape[1:])} but the training "
                         f"samples {sample}; they must match (test_x is (N_test, {', '.join(map(str, sample))})).")
    B = min(problem.batch_size, problem.data_x.shape[1])
    batch = jax.ShapeDtypeStruct((B,) + sample, problem.data_x.dtype)
    labels = jax.ShapeDtypeStruct((B,) + tuple(problem.data_y.shape[2:]), problem.data_y.dtype)
    state = problem.model_state
    key = jax.random.key(0)

    def train_out(x, X, s, k):
        if problem.augment is not None:
            X = problem.augment(k, X)
        return problem.apply(x, X, s, k if problem.stochastic_model else None, True)

    try:
        out, new_state = jax.eval_shape(train_out, problem.x0, batch, state, key)
    except Exception as e:  # noqa: BLE001 (flax, equinox or user code: re-raised with what was being done)
        raise ValueError(f"{name}: the model fails on a training batch of shape {(B,) + sample} with its "
                         f"parameters (d={problem.d}): {type(e).__name__}: {e}") from e
    if not out.shape or out.shape[0] != B:
        raise ValueError(f"{name}: the model must return one output per sample; on a batch of {B} it returned "
                         f"shape {out.shape}.")
    if state is not None and jax.tree.structure(new_state) != jax.tree.structure(state):
        raise ValueError(f"{name}: the model's new state has another structure than its state.")
    try:
        per = jax.eval_shape(problem.loss, out, labels)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{name}: the loss fails on outputs of shape {out.shape} and labels of shape "
                         f"{labels.shape}: {type(e).__name__}: {e}") from e
    if per.shape != (B,):
        raise ValueError(f"{name}: the loss must return one value per sample, shape ({B},); got {per.shape}.")
    if problem.test_x.shape[0] > 0:
        T = min(problem.test_x.shape[0], B)
        try:
            jax.eval_shape(lambda x, X, s: problem.apply(x, X, s)[0], problem.x0,
                           jax.ShapeDtypeStruct((T,) + sample, problem.test_x.dtype), state)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{name}: the model fails on the test set's samples: {type(e).__name__}: {e}") from e
    return out


# ---- flax ------------------------------------------------------------------------------------------------------------
def _linen(module, sample, init_seed, train_arg, rng_names):
    flag = train_flag(module.__call__, train_arg)
    mode = {} if flag is None else {flag: False if _trains_true(flag) else True}
    keys = {"params": jax.random.key(init_seed)}
    keys.update({name: jax.random.fold_in(jax.random.key(init_seed), j + 1) for j, name in enumerate(rng_names)})
    try:
        try:
            hash(module)
            cached = True
        except TypeError:  # a module with unhashable fields: compiled for this call only
            cached = False
        if cached:  # one compiled init per module and sample shape (a sweep over data seeds builds many problems)
            variables = _linen_init(module, tuple(sorted(mode.items())), keys, sample)
        else:
            variables = jax.jit(lambda k, x: module.init(k, x, **mode))(keys, sample)
    except Exception as e:  # noqa: BLE001 (flax or user code: re-raised with what was being done)
        raise ValueError(f"from_flax: the module fails on a sample of shape {sample.shape[1:]} (its init): "
                         f"{type(e).__name__}: {e}") from e
    variables = jax.device_get(dict(variables))
    params = variables.pop("params", None)
    if params is None:
        raise ValueError("from_flax: the module made no 'params' collection; it has no parameters to train.")
    layout = Layout.of(params)
    state = {k: v for k, v in variables.items()} or None
    net = LinenNet(module, layout, flag, tuple(sorted(state)) if state else (), tuple(rng_names))
    return net, layout.ravel(params), state, bool(rng_names)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _linen_init(module, mode, keys, sample):
    return module.init(keys, sample, **dict(mode))


def _trains_true(flag):
    from jaxgossip.problems.nets import TRAIN_FLAGS

    return TRAIN_FLAGS[flag]


def _nnx(module):
    from flax import nnx

    graphdef, params, rng, rest = nnx.split(module, nnx.Param, nnx.RngState, ...)
    params, rng, rest = jax.device_get((params, rng, rest))
    layout = Layout.of(params)
    leaves, rng_def = jax.tree.flatten(rng)
    kinds, shapes, impls = [], [], []
    for leaf in leaves:
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            kinds.append("key")
            impls.append(str(jax.random.key_impl(leaf)))
        else:
            kinds.append(str(leaf.dtype))
            impls.append(None)
        shapes.append(tuple(leaf.shape))
    net = NNXNet(graphdef, layout, rng_def, tuple(kinds), tuple(shapes), tuple(impls))
    state = rest if jax.tree.leaves(rest) else None
    return net, layout.ravel(params), state, "key" in kinds


def from_flax(module, data="digits", *, loss="cross_entropy", n_workers: int = 16, partition: str = "iid",
              alpha: float | None = None, batch_size=32, reg: float = 0.0, seed: int = 0, init_seed: int | None = None,
              test_fraction: float = 0.2, num_samples: int | None = None, standardize: bool = False, normalize=None,
              augment=None, train_arg="auto", rng_names=("dropout",), share_model_state: bool = False,
              eval_batch: int | None = 1024, worker_map: str = "auto", conv: str = "auto",
              classification: bool | None = None, name: str | None = None) -> Problem:
    """A problem from a flax network: a linen ``nn.Module`` or an (initialized) ``nnx.Module``.

    Linen modules are initialized with ``init_seed``; an nnx module arrives initialized and every worker starts from
    its parameters. Mutable collections (linen's ``batch_stats``, nnx's ``BatchStat``) become per-worker model state,
    updated in training by each worker's own batch and not communicated (``share_model_state=True`` averages them
    with the models after every step, priced as one more float message per worker). The average model is evaluated
    with the workers' statistics averaged. Dropout draws from worker i's own key each step.

    Args:
      module: ``flax.linen.Module`` (``__call__(x, train=...)`` or ``deterministic=...``: found by name, or given as
        ``train_arg``) or ``flax.nnx.Module`` (``model(x)``; ``.train()`` / ``.eval()`` switch modes).
      data: a built-in set name (``"digits"`` as 8x8x1 images, ``"mnist1d"`` as (40, 1) sequences, ...), user arrays
        ``(X, y)`` / ``(X, y, X_test, y_test)`` (e.g. ``jg.data.load("cifar10", path=...)``), used as given.
      loss: ``"cross_entropy"`` (integer labels), ``"binary_logistic"``, ``"squared_error"``, or a callable
        ``loss(outputs, y) -> (B,)`` per-sample losses (see :mod:`jaxgossip.problems.losses`).
      n_workers, partition, alpha: the workers and how the data is split (``"iid"``, ``"label"``, ``"dirichlet"``;
        ``alpha``, default 0.5, is the Dirichlet concentration and is refused with the other partitions).
      batch_size: per-worker batch, or ``"full"`` (each gradient the exact one of the worker's whole share).
      reg: L2 coefficient added to every local objective.
      seed: seeds the train/test split and the partition; ``init_seed`` (default: ``seed``) the initial model of a
        linen module (an nnx module arrives initialized and refuses one).
      standardize, normalize: see :func:`jaxgossip.problems.load` (per channel for images).
      augment: ``augment(key, batch) -> batch`` applied to each training batch (``jg.data.random_crop(4)``, ...).
      train_arg: the mode keyword of a linen module (``"auto"``: ``train``, ``deterministic``, ... by name; None:
        none).
      rng_names: the rng streams a linen module draws from in training.
      eval_batch: evaluate in chunks of this many samples (bounded memory); None: one pass.
      worker_map: how the workers' gradients are mapped: ``"vmap"`` (one program over the stacked workers),
        ``"map"`` (``lax.map``: one worker's ordinary program at a time) or ``"auto"`` (default: the faster of the
        two for this problem's shapes on this device, timed once and cached on disk, see :mod:`jaxgossip.lowering`;
        with ``JAXGOSSIP_LOWERING=platform``: ``"map"`` on CPU, ``"vmap"`` on GPU and TPU). The choice is recorded in
        ``Result.config["model"]["lowering"]``; ``JAXGOSSIP_VERBOSE=1`` prints it with the times.
      conv: how ``nn.Conv`` layers are lowered: ``"auto"`` (default: measured with ``worker_map``, as is a zoo
        model's own ``conv="auto"``; with ``JAXGOSSIP_LOWERING=platform`` im2col and one matrix product on CPU and GPU,
        as written on TPU), ``"im2col"`` or ``"xla"`` (as written). On XLA's CPU backend a convolution inside the run's
        compiled loop, or vmapped over per-worker kernels, is many times slower than a matrix product of the same
        size; im2col gives the same numbers (to float32 rounding). Convolutions that name their own
        ``conv_general_dilated`` are left alone. See :mod:`jaxgossip.models.conv`.
      classification: report accuracy (default: from the loss).
      name: the problem's name in tables.

    Returns:
      A :class:`~jaxgossip.problems.Problem` with ``layout`` (the parameters' names, shapes and offsets).
    """
    if conv not in CONVS:
        raise ValueError(f"from_flax: conv must be one of {CONVS}, got {conv!r}.")
    if _is_nnx(module) and init_seed is not None:
        raise ValueError("from_flax: init_seed initializes a linen module; an nnx module arrives initialized and would "
                         "ignore it (build it with nnx.Rngs(seed) instead).")
    alpha, init_seed = _check_common("from_flax", data, n_workers, partition, alpha, seed, init_seed, test_fraction,
                                     num_samples, standardize, share_model_state, classification, name)
    spec = ProblemSpec("from_flax", dict(
        module=_module_record(module), data=data, loss=loss, n_workers=n_workers, partition=partition, alpha=alpha,
        batch_size=batch_size, reg=reg, seed=seed, init_seed=init_seed if not _is_nnx(module) else None,
        test_fraction=test_fraction, num_samples=num_samples, standardize=standardize, normalize=normalize,
        augment=augment, train_arg=train_arg, rng_names=rng_names, share_model_state=share_model_state,
        eval_batch=eval_batch, worker_map=worker_map, conv=conv, classification=classification, name=name))
    sample = data_lib.load(data, test_fraction=test_fraction, seed=seed, num_samples=num_samples,
                           standardize=standardize, normalize=normalize)[0][:1].astype(np.float32)
    if _is_nnx(module):
        net, x0, state, stochastic = _nnx(module)
        kind = type(module).__name__
    elif _is_linen(module):
        if isinstance(rng_names, str):
            rng_names = (rng_names,)
        net, x0, state, stochastic = _linen(module, sample, init_seed, train_arg, tuple(rng_names))
        kind = type(module).__name__
    else:
        raise ValueError(f"from_flax: module must be a flax.linen.Module or a flax.nnx.Module, got "
                         f"{type(module).__name__}; for other models use jg.problems.from_function.")
    base, module_auto = net, _is_linen(module) and getattr(module, "conv", None) == "auto"
    net = dataclasses.replace(net, conv=conv_lowering(conv))

    def conv_variant(c):  # every "auto" convolution lowering (from_flax's and a zoo model's own) set to c
        v = dataclasses.replace(base, conv=c if conv == "auto" else conv_lowering(conv))
        return dataclasses.replace(v, module=v.module.clone(conv=c)) if module_auto else v

    label = name or f"{kind}({data if isinstance(data, str) else 'arrays'}, {partition})"
    return _build("from_flax", net, x0, state, data, loss=loss, n_workers=n_workers, partition=partition, alpha=alpha,
                  batch_size=batch_size, reg=reg, seed=seed, test_fraction=test_fraction, num_samples=num_samples,
                  standardize=standardize, normalize=normalize, augment=augment, share_model_state=share_model_state,
                  eval_batch=eval_batch, worker_map=worker_map, classification=classification, label=label,
                  stochastic=stochastic, spec=spec, conv_variant=conv_variant if conv == "auto" or module_auto else None)


def _module_record(module):
    """A flax module in a problem's spec: a linen module's ``repr`` (its class and fields; its parameters come from
    ``init_seed``), an nnx module's class (its parameters are the problem's ``x0``, whose digest the config holds)."""
    if _is_nnx(module):
        return {"nnx": type(module).__qualname__}
    if _is_linen(module):
        from jaxgossip._record import jsonable

        return {"linen": jsonable(module)}
    return type(module).__qualname__


def _is_linen(module) -> bool:
    try:
        from flax import linen as nn
    except ImportError:  # pragma: no cover
        return False
    return isinstance(module, nn.Module)


def _is_nnx(module) -> bool:
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover
        return False
    return isinstance(module, nnx.Module)


# ---- any JAX function ------------------------------------------------------------------------------------------------
def from_function(params, apply_fn, data="digits", *, loss="cross_entropy", state=None, n_workers: int = 16,
                  partition: str = "iid", alpha: float | None = None, batch_size=32, reg: float = 0.0, seed: int = 0,
                  init_seed: int | None = None, test_fraction: float = 0.2, num_samples: int | None = None,
                  standardize: bool = False, normalize=None, augment=None, share_model_state: bool = False,
                  eval_batch: int | None = 1024, worker_map: str = "auto", classification: bool | None = None,
                  name: str | None = None) -> Problem:
    """A problem from any JAX model (equinox, haiku, plain functions).

    Args:
      params: the initial parameter pytree, or ``init_fn(key) -> params`` (called with ``key(init_seed)``).
      apply_fn: ``apply_fn(params, X) -> outputs`` for a batch X (B, ...); with ``state`` given,
        ``apply_fn(params, state, X) -> (outputs, new_state)``. If it takes a ``key`` keyword it gets worker i's key
        for this step in training (None in evaluation); if it takes ``train`` it gets the mode.
      data, loss, n_workers, partition, alpha, batch_size, reg, seed, init_seed, test_fraction, num_samples,
        standardize, normalize, augment, share_model_state, eval_batch, worker_map, classification, name: as in
        :func:`from_flax`.
      state: the model's initial mutable state (a pytree), per worker during a run, or None.

    Convolutions in ``apply_fn`` run as written; on CPU write them with :func:`jaxgossip.models.im2col_conv` (the
    signature of ``lax.conv_general_dilated``) for the speed :func:`from_flax`'s ``conv="auto"`` gives flax models.

    Returns:
      A :class:`~jaxgossip.problems.Problem`.

    Example (equinox)::

        params, static = eqx.partition(model, eqx.is_array)
        apply = lambda p, X: jax.vmap(eqx.combine(p, static))(X)
        prob = jg.problems.from_function(params, apply, "digits")
    """
    if not callable(apply_fn):
        raise ValueError(f"from_function: apply_fn must be a callable apply_fn(params, X), got {type(apply_fn).__name__}.")
    from jaxgossip._record import describe_callable, digest

    init_fn = callable(params) and not isinstance(params, (dict, list, tuple)) and not hasattr(params, "shape")
    if not init_fn and init_seed is not None:
        raise ValueError("from_function: init_seed is the key of an init function params(key); given parameters "
                         "would ignore it. Pass params=init_fn or drop init_seed.")
    alpha, init_seed = _check_common("from_function", data, n_workers, partition, alpha, seed, init_seed,
                                     test_fraction, num_samples, standardize, share_model_state, classification, name)
    spec = ProblemSpec("from_function", dict(
        params=describe_callable(params) if init_fn else {"digest": digest(params),
                                                           "leaves": len(jax.tree.leaves(params))},
        apply_fn=describe_callable(apply_fn), data=data, loss=loss,
        state=None if state is None else {"digest": digest(state)}, n_workers=n_workers, partition=partition,
        alpha=alpha, batch_size=batch_size, reg=reg, seed=seed, init_seed=init_seed if init_fn else None,
        test_fraction=test_fraction, num_samples=num_samples, standardize=standardize, normalize=normalize,
        augment=augment, share_model_state=share_model_state, eval_batch=eval_batch, worker_map=worker_map,
        classification=classification, name=name))
    if callable(params) and not isinstance(params, (dict, list, tuple)) and not hasattr(params, "shape"):
        params = params(jax.random.key(init_seed))
    params = jax.device_get(params)
    if not jax.tree.leaves(params):
        raise ValueError("from_function: params has no arrays to train.")
    layout = Layout.of(params)
    try:
        names = inspect.signature(apply_fn).parameters
    except (TypeError, ValueError):
        names = {}
    net = FunctionNet(apply_fn, layout, state is not None, "key" in names, "train" in names)
    state = None if state is None else jax.device_get(state)
    label = name or f"{getattr(apply_fn, '__name__', 'model')}({data if isinstance(data, str) else 'arrays'}, {partition})"
    return _build("from_function", net, layout.ravel(jax.tree.map(np.asarray, params)), state, data, loss=loss,
                  n_workers=n_workers, partition=partition, alpha=alpha, batch_size=batch_size, reg=reg, seed=seed,
                  test_fraction=test_fraction, num_samples=num_samples, standardize=standardize, normalize=normalize,
                  augment=augment, share_model_state=share_model_state, eval_batch=eval_batch, worker_map=worker_map,
                  classification=classification, label=label, stochastic="key" in names, spec=spec)
