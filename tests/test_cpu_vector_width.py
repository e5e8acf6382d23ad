"""512-bit vectors on AVX-512 CPUs (jaxgossip/_threefry_cpu.compiler_options): chosen as documented, same random bits."""

import os

import pytest

from jaxgossip import _threefry_cpu
from _fresh import outputs_per_value


@pytest.fixture
def fresh_options(monkeypatch):
    _threefry_cpu.compiler_options.cache_clear()
    yield monkeypatch
    _threefry_cpu.compiler_options.cache_clear()


@pytest.mark.parametrize("env, avx512, expected", [("", True, 512), ("", False, None), ("256", True, None),
                                                   ("512", False, 512)])
def test_width_follows_the_cpu_unless_the_environment_says(fresh_options, env, avx512, expected):
    fresh_options.setenv("JAXGOSSIP_CPU_VECTOR_WIDTH", env)
    fresh_options.setattr(_threefry_cpu, "_has_avx512", lambda: avx512)
    assert _threefry_cpu.compiler_options().get("xla_cpu_prefer_vector_width") == expected


# The first lines of /proc/cpuinfo on the two kinds of machine the suite runs on (flags shortened, order kept).
INTEL_AVX512 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi1 \
bmi2 avx512f avx512dq rdseed adx avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl avx512vbmi
"""
AMD_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi1 \
bmi2 rdseed adx clflushopt clwb sha_ni xsaveopt xsavec clzero xsaveerptr arat npt nrip_save umip rdpid
"""


@pytest.mark.parametrize("cpuinfo, xla_flags, expected", [
    (INTEL_AVX512, "", 512),
    (AMD_AVX2, "", None),
    (INTEL_AVX512, "--xla_force_host_platform_device_count=8 --xla_cpu_max_isa=AVX2", None),  # XLA capped below 512
    (INTEL_AVX512, "--xla_cpu_max_isa=AVX512_VNNI", 512),
    ("processor\t: 0\n", "", None),  # no flags line (another OS's layout)
])
def test_the_decision_on_faked_cpuinfo(fresh_options, tmp_path, cpuinfo, xla_flags, expected):
    """The vector width decided from /proc/cpuinfo (faked) and XLA_FLAGS, with no override in the environment."""
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    fresh_options.setattr(_threefry_cpu, "_CPUINFO", str(path))
    fresh_options.setenv("XLA_FLAGS", xla_flags)
    fresh_options.delenv("JAXGOSSIP_CPU_VECTOR_WIDTH", raising=False)
    assert ("avx512f" in _threefry_cpu._cpu_flags()) == (cpuinfo is INTEL_AVX512)
    assert _threefry_cpu.compiler_options().get("xla_cpu_prefer_vector_width") == expected


def test_a_missing_cpuinfo_means_no_avx512(fresh_options, tmp_path):
    fresh_options.setattr(_threefry_cpu, "_CPUINFO", str(tmp_path / "absent"))
    fresh_options.delenv("JAXGOSSIP_CPU_VECTOR_WIDTH", raising=False)
    assert _threefry_cpu._cpu_flags() == frozenset() and _threefry_cpu.compiler_options() == {}


@pytest.mark.parametrize("cpuinfo", [INTEL_AVX512, AMD_AVX2])
def test_the_unrolled_threefry_does_not_depend_on_the_cpu(fresh_options, tmp_path, cpuinfo):
    """The Threefry lowering is chosen from jax's version and JAXGOSSIP_ROLLED_THREEFRY only, on either machine."""
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    fresh_options.setattr(_threefry_cpu, "_CPUINFO", str(path))
    from jax._src.random import threefry2x32 as tf

    expected = hasattr(tf, "_threefry2x32_lowering") and os.environ.get("JAXGOSSIP_ROLLED_THREEFRY", "") in ("", "0")
    assert _threefry_cpu.install() == expected == _threefry_cpu.installed()


def test_a_bad_width_is_refused(fresh_options):
    fresh_options.setenv("JAXGOSSIP_CPU_VECTOR_WIDTH", "1024")
    with pytest.raises(ValueError, match="256 or 512"):
        _threefry_cpu.compiler_options()


def test_random_bits_and_a_run_are_the_same_at_both_widths():
    code = ("import jax, numpy as np, jaxgossip as jg; from jaxgossip._threefry_cpu import compiler_options as o; "
            "k = jax.random.key(7); u = jax.jit(lambda k: jax.random.uniform(k, (64, 257)), compiler_options=o())(k); "
            "p = jg.problems.quadratic(n_workers=8, dim=10, seed=0); "
            "r = jg.simulate(p, jg.algorithms.choco_sgd(lr=0.05, compressor=jg.compressors.quantize(bits=4)), "
            "jg.topology.ring(8), steps=40, eval_every=20, seed=1, shard=False); "
            "print(o().get('xla_cpu_prefer_vector_width', 256), np.asarray(u).tobytes().hex(), "
            "np.asarray(r.state.x).tobytes().hex())")
    narrow, wide = outputs_per_value(code, "JAXGOSSIP_CPU_VECTOR_WIDTH", ("256", "512"))
    assert (narrow[0], wide[0]) == ("256", "512")
    assert narrow[1:] == wide[1:]


def test_options_this_xla_does_not_know_are_dropped_not_fatal(monkeypatch):
    """A newer XLA may drop a flag: the first run checks the options with one tiny compile and runs without them."""
    import jax.numpy as jnp

    monkeypatch.setattr(_threefry_cpu, "compiler_options", lambda: {"xla_cpu_no_such_option_anywhere": 1})
    _threefry_cpu._usable_options.cache_clear()
    try:
        assert _threefry_cpu._usable_options() == {}
        double = _threefry_cpu.run_jit(lambda x, *, k: k * x, static_argnames=("k",))
        assert float(double(jnp.float32(2.0), k=3)) == 6.0
    finally:
        _threefry_cpu._usable_options.cache_clear()


def test_known_options_are_used_on_cpu(monkeypatch):
    monkeypatch.setattr(_threefry_cpu, "compiler_options", lambda: {"xla_cpu_prefer_vector_width": 512})
    _threefry_cpu._usable_options.cache_clear()
    try:
        assert _threefry_cpu._usable_options() == {"xla_cpu_prefer_vector_width": 512}
    finally:
        _threefry_cpu._usable_options.cache_clear()
