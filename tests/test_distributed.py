"""Two CPU processes on this machine (jax.distributed, gloo collectives) give the metrics of one process."""

import json
import os
import socket
import subprocess
import sys

import pytest

import jaxgossip as jg

HERE = os.path.dirname(os.path.abspath(__file__))


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(pid, nproc, port):
    # 4 CPU devices per process: 8 in all, one worker of ring(8) on each (with 2 workers per device XLA's batched
    # matmul rounds differently from the 8-worker batch of one device, ~1 ulp; see README "Reproducibility")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    return subprocess.Popen([sys.executable, os.path.join(HERE, "_distributed_worker.py"), str(pid), str(nproc), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _metrics(proc):
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    line = [ln for ln in out.splitlines() if ln.startswith("METRICS")][-1]
    return json.loads(line[len("METRICS"):])


def test_two_processes_match_one():
    port = _free_port()
    procs = [_launch(i, 2, port) for i in range(2)]
    single = _metrics(_launch(0, 1, port))
    both = [_metrics(p) for p in procs]
    assert both[0]["devices"] == 8 and single["devices"] == 1
    for m in both:
        assert m == {**single, "devices": 8}  # bit-identical metrics on every process


def test_bad_collectives_rejected():
    with pytest.raises(ValueError, match="cpu_collectives"):
        jg.distributed.initialize(cpu_collectives="nccl")
