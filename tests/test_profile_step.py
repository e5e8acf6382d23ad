"""benchmarks/profile_step.py: kernel self times from a trace (a ``while`` without the kernels it runs)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import profile_step  # noqa: E402


def _event(name, ts, dur, tid=1):
    return {"ph": "X", "name": name, "ts": ts, "dur": dur, "pid": 1, "tid": tid}


def test_nested_kernels_are_taken_off_their_parent_and_host_events_are_ignored():
    events = [
        _event("while.4", 0, 100),
        _event("ynn_fusion", 10, 30),
        _event("copy.2", 40, 10),
        _event("ynn_fusion", 60, 30),
        _event("$simulate.py:1 simulate", 0, 200),  # a host frame: not a kernel
        _event("copy.2", 5, 20, tid=2),  # another thread: not nested in the while
        {"ph": "i", "name": "copy.2", "ts": 0, "pid": 1, "tid": 1},  # an instant event
    ]
    total, count = profile_step.kernel_times(events, {"while.4", "ynn_fusion", "copy.2"})
    assert dict(total) == {"while.4": 30, "ynn_fusion": 60, "copy.2": 30}
    assert dict(count) == {"while.4": 1, "ynn_fusion": 2, "copy.2": 2}


def test_hlo_names_reads_instruction_names_of_optimized_modules(tmp_path):
    (tmp_path / "module_0001.jit_f.cpu_after_optimizations.txt").write_text(
        "ENTRY %main (p: f32[4]) -> f32[4] {\n  %p = f32[4]{0} parameter(0)\n"
        "  ROOT %add_fusion.1 = f32[4]{0} fusion(%p), kind=kLoop\n}\n")
    (tmp_path / "module_0001.jit_f.before_optimizations.txt").write_text("  %unoptimized = f32[] constant(0)\n")
    assert profile_step.hlo_names(str(tmp_path)) == {"p", "add_fusion.1"}
