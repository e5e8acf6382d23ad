"""DeepSqueeze / CHOCO-SGD vs DCD-PSGD under aggressive compression (slides 004, "DeepSqueeze V.S. DCD-PSGD").

16-node ring, the ill-conditioned least-squares problem of ``tang2018-fig4``. With 2-bit quantization (no buckets) or
the 1-bit scaled sign (biased), DeepSqueeze (error-compensated: the compression error is fed back into the next
message) and CHOCO-SGD (compressing the vanishing difference to a public estimate) with consensus step c = 0.2 end
within 3x of full-precision D-PSGD, although Thm. 1's alpha is far above DCD's bound (1 - rho) / (2 mu). DCD-PSGD
diverges with 1-bit quantization.

What we measured and do not claim: on this problem DCD-PSGD itself still converges at 2 bits and with the sign (Thm. 1
is only sufficient), so the slides' "DCD fails at 4 bits" is not reproduced here; and 1-bit unbiased quantization
(E||C(x) - x||^2 > ||x||^2, not a contraction) breaks DeepSqueeze and CHOCO-SGD as well. The frame holds every curve.
"""

from __future__ import annotations

import jax.numpy as jnp
import pandas as pd

from jaxgossip import algorithms as A
from jaxgossip import compressors as C
from jaxgossip import topology
from jaxgossip.reproduce import Reproduction, register
from jaxgossip.theory import dcd_condition, estimate_alpha
from jaxgossip.reproduce.tang2018 import FIG4_STEPS, LR, _figure, fig4_problem, run_grid, tail, verdict

__all__ = ["deepsqueeze_2bit"]

CONSENSUS = 0.2


@register("deepsqueeze-2bit", "DeepSqueeze and CHOCO converge at 2 bits and with sign, beyond DCD-PSGD's Thm. 1 bound")
def deepsqueeze_2bit(size="small", seeds=(0, 1, 2)):
    n = 16
    steps = FIG4_STEPS[size]  # the same problem and budget as Fig. 4
    prob = fig4_problem(n)
    topo = topology.ring(n)
    comps = {"2-bit": C.quantize(bits=2), "sign": C.sign()}
    configs = [("D-PSGD (32-bit)", A.dpsgd(lr=LR)), ("DCD-PSGD 1-bit", A.dcd_psgd(lr=LR, compressor=C.quantize(bits=1)))]
    for cname, comp in comps.items():
        configs += [(f"DCD-PSGD {cname}", A.dcd_psgd(lr=LR, compressor=comp)),
                    (f"DeepSqueeze {cname}", A.deepsqueeze(lr=LR, compressor=comp, consensus=CONSENSUS)),
                    (f"CHOCO-SGD {cname}", A.choco_sgd(lr=LR, compressor=comp, consensus=CONSENSUS))]
    frame, res = run_grid(prob, topo, configs, steps, steps // 20, seeds)
    f0 = float(res["D-PSGD (32-bit)"][0].metrics["suboptimality"][0])
    ref = tail(res["D-PSGD (32-bit)"])
    rows = []
    for cname in ("2-bit", "sign"):
        ds, ch = tail(res[f"DeepSqueeze {cname}"]), tail(res[f"CHOCO-SGD {cname}"])
        rows += [
            verdict(f"{cname}: DeepSqueeze (c={CONSENSUS}) converges (final f-f* within 3x of full-precision D-PSGD)",
                    f"DeepSqueeze {ds:.3g} vs D-PSGD {ref:.3g}", ds < 3 * ref),
            verdict(f"{cname}: CHOCO-SGD (c={CONSENSUS}) converges (final f-f* within 3x of full-precision D-PSGD)",
                    f"CHOCO {ch:.3g} vs D-PSGD {ref:.3g}", ch < 3 * ref),
        ]
    Z = prob.full_grads(jnp.broadcast_to(prob.x0, (n, prob.d)))
    alphas = {cname: estimate_alpha(comp, Z) for cname, comp in comps.items()}
    bound = dcd_condition(topo, 0.0).alpha_max
    rows.append(verdict("2 bits and sign are beyond DCD-PSGD's Thm. 1 bound on ring(16) (alpha > (1 - rho) / (2 mu))",
                        ", ".join(f"alpha_{k} = {v:.3g}" for k, v in alphas.items()) + f"; bound {bound:.3g}",
                        all(v > bound for v in alphas.values())))
    dcd1 = tail(res["DCD-PSGD 1-bit"])
    rows.append(verdict("1-bit quantization (alpha ~ 4): DCD-PSGD fails (diverges)", f"DCD {f0:.3g} -> {dcd1:.3g}",
                        dcd1 > f0))
    # Reported in the frame, not claimed: on this problem DCD-PSGD still converges at 2 bits and with sign, and 1-bit
    # unbiased quantization (not a contraction, E||C(x) - x||^2 > ||x||^2) breaks DeepSqueeze and CHOCO-SGD too.
    fig = _figure(res, "DeepSqueeze vs DCD-PSGD: ring(16), 2-bit quantization and scaled sign")
    return Reproduction("deepsqueeze-2bit", frame, pd.DataFrame(rows), fig)
