"""One process of the two-process test (tests/test_distributed.py): prints the metrics and the final models as JSON,
of the run sharded over 8 devices (``METRICS``) and, in a one-process run, of the same run on one device too
(``ONEDEVICE``).

The models are gathered from every process (``process_allgather``) and printed as the hex of their float32 bytes, so the
test can compare them bit for bit.
"""

import json
import sys

import numpy as np
from jax.experimental import multihost_utils

import jaxgossip as jg

pid, nproc, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if nproc > 1:
    jg.distributed.initialize(f"localhost:{port}", nproc, pid)
prob = jg.problems.logistic_regression("digits", n_workers=8, batch_size=4, seed=0, solve_optimum=False)


def run(shard):
    res = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(8), steps=20, eval_every=10, seed=2,
                      backend="shift", shard=shard)
    x = res.state.x
    x = np.asarray(multihost_utils.process_allgather(x, tiled=True) if nproc > 1 else x, np.float32)
    return json.dumps({"devices": res.config["devices"], "models": x.tobytes().hex(),
                       **{k: [float(v) for v in a] for k, a in res.metrics.items()}})


print("METRICS" + run(True))  # one worker per device: 8 devices (one process of 8, or the processes' devices)
if nproc == 1:
    print("ONEDEVICE" + run(False))  # the eight workers on one device
