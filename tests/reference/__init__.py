"""An independent NumPy reference of every algorithm in ``jg.algorithms.REGISTRY`` and of the cost model.

Written from the papers (/work/shared/ALGORITHMS.md, /work/shared/papers/) and the authors' released code
(epfml/ChocoSGD, epfml/powergossip, liboyue/beer, IgorSokoloff/ef21_experiments_source_code,
facebookresearch/stochastic_gradient_push), not from the library: every worker is updated one at a time in an explicit
Python loop, in float64, and every message is priced by the alpha-beta model of :mod:`reference.pricing`.

What is taken from the library, and only that:

* the inputs: the problem's data (A_i, b_i, the L2 coefficient, L and mu), the mixing matrices W of the topologies
  (as NumPy arrays: which graph, with which weights, is the experiment's input), the initial models;
* its random draws: the library derives step t's key as ``fold_in(key(seed), t)`` and worker i's key of stream s as
  ``fold_in(fold_in(step key, s), i)`` (``simulate.py``, ``compressors/_base.py::compress_rows``); the reference
  derives the same keys (:class:`reference.common.Keys`) and draws the same uniforms / normals / categorical samples
  with ``jax.random``, then does all the arithmetic itself (a stochastic quantizer's rounding, the event order of the
  asynchronous methods, QuanTimed's sample counts from the drawn speeds).

Modules: ``common`` (keys, least squares gradients, graphs, local optimizers), ``compressors``, ``pricing``,
``decentralized``, ``asynchronous``, ``centralized``, ``star``. :func:`run` dispatches on the algorithm's name.
"""

from reference.common import Setup, Keys, Graph, LeastSquares, LocalOptimizer  # noqa: F401
from reference.runner import run, ALGORITHMS  # noqa: F401
