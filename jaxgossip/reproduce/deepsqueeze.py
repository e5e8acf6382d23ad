"""DeepSqueeze / CHOCO-SGD vs DCD-PSGD under aggressive compression (slides 004, "DeepSqueeze V.S. DCD-PSGD").

The slides (paper 004, "DeepSqueeze V.S. DCD-PSGD") claim that DCD-PSGD fails under aggressive compression while
DeepSqueeze (DCD-SGD plus error compensation: each worker feeds its last compression error back into its next message,
Tang et al. 2019) is "robust to 2-bit compression", and that its compression "can be biased".

The regime where the contrast shows, found by a search over step size, topology, problem and steps (2 to 3 seeds
each): a 16-node ring, least squares with d = 200, condition number 1000, heterogeneous workers and gradient noise
(:func:`ds_problem`), and the large step size gamma = 0.25 (:data:`LR`), at which full-precision D-PSGD still
converges. There, over seeds 0, 1, 2 (f - f* = 21.3 at the start; geometric means over seeds of the last three
evaluations, sizes test / small / paper = 300 / 1500 / 6000 steps):

=====================  =====================  ==================  ==================
run                    test                   small               paper
=====================  =====================  ==================  ==================
D-PSGD (32-bit)        2.49                   1.45                1.25
DCD-PSGD 2-bit         diverged (3/3 seeds)   diverged (3/3)      diverged (3/3)
DeepSqueeze 2-bit      2.32                   1.89                1.63
CHOCO-SGD 2-bit        2.57                   1.79                1.48
DeepSqueeze sign       2.62                   2.11                3.09
CHOCO-SGD sign         3.10                   2.51                2.03
DCD-PSGD 4-bit         2.70                   1.74                1.45
=====================  =====================  ==================  ==================

So at 2 bits DCD-PSGD fails (diverges within about 60 steps; at gamma = 0.2 it stalls near f - f* = 15 instead,
D-PSGD 1.15) while DeepSqueeze and CHOCO-SGD with consensus step c = 0.2 converge; with the 1-bit scaled sign
(biased) DeepSqueeze and CHOCO-SGD converge to a floor within 3x of D-PSGD (DeepSqueeze compresses the model itself,
so its sign error floor does not shrink; at c = 0.05 it diverges). The claims check exactly this.

The 2-bit quantizer is used as the slides use it, unscaled: ``as_given(quantize(bits=2))``. CHOCO-SGD and DeepSqueeze
by default rescale an unbiased compressor by 1 / (1 + omega) (Koloskova et al. 2019), which for the unbucketed 2-bit
quantizer (omega = d / 18) slows them so much that they end far above D-PSGD (measured at test size: DeepSqueeze 33.8,
per seed 56.5 / 8.14 / 83.5, against D-PSGD's 2.49).

What we measured and do not claim (the frame holds every curve; the verdict table states the first point):

* the slides' "DCD fails for 4-bit compression" does not appear: DCD-PSGD at 4 bits converges here (table above),
  although 4 bits break Thm. 1's sufficient condition (a verdict row says so, marked "not reproduced");
* DCD-PSGD with the scaled sign converges here too, even a little better than DeepSqueeze (600 steps: 1.5 vs 2.4):
  the contrast for biased compression is not shown on this problem. (On logistic regression on digits, 16 workers,
  gamma = 0.05, 1000 steps, DCD-PSGD with sign does stall at loss 0.22 where DeepSqueeze and D-PSGD reach 0.15.)
* at the milder gamma = 0.05 of ``tang2018-fig4`` DCD-PSGD converges at 2 bits and with sign on every problem and
  graph we tried (ring, torus, hypercube, complete; least squares d = 50 and 200, logistic regression on digits);
* 1-bit unbiased quantization (E||C(x) - x||^2 > ||x||^2, not a contraction) breaks DeepSqueeze as well.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxgossip import algorithms as A
from jaxgossip import compressors as C
from jaxgossip import problems, topology
from jaxgossip.reproduce import Reproduction, register
from jaxgossip.theory import dcd_condition, estimate_alpha
from jaxgossip.reproduce.tang2018 import _figure, run_grid, tail, verdict

__all__ = ["deepsqueeze_2bit", "ds_problem", "LR", "CONSENSUS", "STEPS"]

#: The consensus step of DeepSqueeze and CHOCO-SGD (DeepSqueeze's eta).
CONSENSUS = 0.2
#: The step size of every algorithm: large enough that DCD-PSGD's 2-bit compression error blows up.
LR = 0.25
STEPS = {"test": 300, "small": 1500, "paper": 6000}
#: "fails": diverged, or a final f - f* above this multiple of full-precision D-PSGD's.
FAIL_FACTOR = 5.0
#: "converges": a final f - f* within this multiple of full-precision D-PSGD's (geometric mean over seeds).
CONVERGE_FACTOR = 3.0


def ds_problem(n=16, dim=200, seed=0):
    """Least squares with heterogeneous workers and gradient noise, condition number 1000, d = 200."""
    return problems.quadratic(n_workers=n, dim=dim, samples_per_worker=50, batch_size=4, heterogeneity=1.0,
                              condition_number=1000.0, seed=seed)


def _finals(runs, last=3):
    """Per seed: the mean of the last ``last`` evaluations of f - f*, inf when the run diverged."""
    out = []
    for r in runs:
        v = np.asarray(r.metrics["suboptimality"], float)[-last:]
        out.append(np.inf if r.diverged or not np.all(np.isfinite(v)) else float(np.mean(v)))
    return out


def _fmt(vals):
    return ", ".join("diverged" if not np.isfinite(v) else f"{v:.3g}" for v in vals)


@register("deepsqueeze-2bit", "DCD-PSGD fails at 2 bits where DeepSqueeze and CHOCO converge (slides 004)")
def deepsqueeze_2bit(size="small", seeds=(0, 1, 2)):
    """DeepSqueeze vs DCD-PSGD at 2 bits and with the scaled sign (slides 004; Tang et al. 2019): see the module
    docstring for the regime, the claims checked and what is measured but not claimed.

    Args:
      size: ``"test"`` (300 steps, seconds), ``"small"`` (1500) or ``"paper"`` (6000).
      seeds: run seeds; every claim is checked on each seed or on the geometric mean over them.
    """
    n = 16
    steps = STEPS[size]
    prob = ds_problem(n)
    topo = topology.ring(n)
    # the slides' unscaled 2-bit quantizer: as_given opts out of the 1 / (1 + omega) rescaling that CHOCO-SGD and
    # DeepSqueeze apply to unbiased compressors by default (recorded in the config); DCD-PSGD uses it as it is anyway
    comps = {"2-bit": C.as_given(C.quantize(bits=2)), "sign": C.sign()}
    configs = [("D-PSGD (32-bit)", A.dpsgd(lr=LR)),
               ("DCD-PSGD 1-bit", A.dcd_psgd(lr=LR, compressor=C.quantize(bits=1))),
               ("DCD-PSGD 4-bit", A.dcd_psgd(lr=LR, compressor=C.quantize(bits=4)))]
    for cname, comp in comps.items():
        configs += [(f"DCD-PSGD {cname}", A.dcd_psgd(lr=LR, compressor=comp)),
                    (f"DeepSqueeze {cname}", A.deepsqueeze(lr=LR, compressor=comp, consensus=CONSENSUS)),
                    (f"CHOCO-SGD {cname}", A.choco_sgd(lr=LR, compressor=comp, consensus=CONSENSUS))]
    frame, res = run_grid(prob, topo, configs, steps, steps // 20, seeds)
    f0 = float(res["D-PSGD (32-bit)"][0].metrics["suboptimality"][0])
    ref = tail(res["D-PSGD (32-bit)"])
    ref_seeds = _finals(res["D-PSGD (32-bit)"])
    rows = []
    dcd2 = _finals(res["DCD-PSGD 2-bit"])
    rows.append(verdict(f"2-bit: DCD-PSGD fails on every seed (diverges, or ends above {FAIL_FACTOR:g}x "
                        f"full-precision D-PSGD)",
                        f"DCD f-f* per seed {_fmt(dcd2)} vs D-PSGD {_fmt(ref_seeds)} (start {f0:.3g})",
                        all(not np.isfinite(v) or v > FAIL_FACTOR * r for v, r in zip(dcd2, ref_seeds))))
    for cname in ("2-bit", "sign"):
        for algo in ("DeepSqueeze", "CHOCO-SGD"):
            label = f"{algo} {cname}"
            per_seed, gm = _finals(res[label]), tail(res[label])
            rows.append(verdict(f"{cname}: {algo} (c={CONSENSUS}) converges (every seed finite, final f-f* within "
                                f"{CONVERGE_FACTOR:g}x of full-precision D-PSGD)",
                                f"{algo} {gm:.3g} (per seed {_fmt(per_seed)}) vs D-PSGD {ref:.3g}",
                                all(np.isfinite(per_seed)) and gm < CONVERGE_FACTOR * ref))
    Z = prob.full_grads(jnp.broadcast_to(prob.x0, (n, prob.d)))
    alphas = {cname: estimate_alpha(comp, Z) for cname, comp in {**comps, "4-bit": C.quantize(bits=4)}.items()}
    bound = dcd_condition(topo, 0.0).alpha_max
    rows.append(verdict("4 bits, 2 bits and sign are beyond DCD-PSGD's Thm. 1 bound on ring(16) "
                        "(alpha > (1 - rho) / (2 mu))",
                        ", ".join(f"alpha_{k} = {v:.3g}" for k, v in alphas.items()) + f"; bound {bound:.3g}",
                        all(v > bound for v in alphas.values())))
    dcd4 = tail(res["DCD-PSGD 4-bit"])
    rows.append(verdict("not reproduced: the slides' 'DCD fails for 4-bit compression'; here DCD-PSGD at 4 bits "
                        f"converges (final f-f* within {CONVERGE_FACTOR:g}x of D-PSGD): Thm. 1 is only sufficient",
                        f"DCD 4-bit {dcd4:.3g} vs D-PSGD {ref:.3g}", dcd4 < CONVERGE_FACTOR * ref))
    dcd1 = _finals(res["DCD-PSGD 1-bit"])
    rows.append(verdict("1-bit quantization (alpha > 1): DCD-PSGD fails on every seed",
                        f"DCD f-f* per seed {_fmt(dcd1)} (start {f0:.3g})",
                        all(not np.isfinite(v) or v > f0 for v in dcd1)))
    # Reported in the frame and the module docstring, not claimed: DCD-PSGD with the scaled sign converges on this
    # problem (no contrast for biased compression here), and 1-bit unbiased quantization breaks DeepSqueeze too.
    fig = _figure(res, f"DeepSqueeze vs DCD-PSGD: ring(16), least squares d=200, lr={LR}, 2-bit and scaled sign")
    return Reproduction("deepsqueeze-2bit", frame, pd.DataFrame(rows), fig)
