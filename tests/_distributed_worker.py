"""One process of the two-process test (tests/test_distributed.py): prints the metrics as JSON."""

import json
import sys

import jaxgossip as jg

pid, nproc, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if nproc > 1:
    jg.distributed.initialize(f"localhost:{port}", nproc, pid)
prob = jg.problems.logistic_regression("digits", n_workers=8, batch_size=4, seed=0, solve_optimum=False)
res = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(8), steps=20, eval_every=10, seed=2,
                  backend="shift", shard=nproc > 1)
print("METRICS" + json.dumps({"devices": res.config["devices"], **{k: [float(v) for v in a] for k, a in res.metrics.items()}}))
