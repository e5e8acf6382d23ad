#!/usr/bin/env bash
# The prepared device command (issue 25): every GPU measurement in one call, each part in its own process under its
# own time limit, each writing its log (and table) into $OUT as it goes, so a part that fails or runs out of time
# leaves the others' results. Run from the repository root on the device machine:
#
#     bash benchmarks/gpu_session.sh            # $OUT: where the logs go (default benchmarks/gpu-out)
#
# Parts: the device and jax versions; item 12 (bench_gpu.py: ResNet-20, n = 16, then n = 64 last, with "auto"
# lowerings timed here); item 9 (LeNet-5: the stack with the measured "auto" beside every fixed lowering, and the loop); item 11
# (ResNet-20 against n isolated steps); items 2 and 8 (compressed steps vs D-PSGD; the 45-configuration sweep).
# The lowering times measured land in $OUT/lowering.json (JAXGOSSIP_LOWERING_CACHE) and in the logs
# (JAXGOSSIP_VERBOSE=1). benchmarks/RESULTS-gpu.md is written from these files afterwards.
set -u
OUT=${OUT:-benchmarks/gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 JAXGOSSIP_VERBOSE=1 JAXGOSSIP_LOWERING_CACHE=$OUT/lowering.json
PY=${PY:-python3}
ALL_PARTS="resnet16 lenet resnet_small items_2_8 resnet64"
PARTS=" ${PARTS:-$ALL_PARTS} "  # a subset: PARTS="lenet items_2_8"
for p in $PARTS; do  # a misspelled part would silently run nothing
  [[ " $ALL_PARTS " == *" $p "* ]] || { echo "gpu_session.sh: unknown part '$p' in PARTS (parts: $ALL_PARTS)" >&2; exit 2; }
done
part() {  # part NAME SECONDS COMMAND...
  local name=$1 secs=$2; shift 2
  [[ "$PARTS" == *" $name "* ]] || return 0
  local t0=$SECONDS
  echo "== $name (limit $secs s)" | tee -a "$OUT/summary.txt"
  timeout "$secs" "$@" > "$OUT/$name.log" 2>&1
  echo "== $name: exit $? after $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
  tail -n 25 "$OUT/$name.log"
}
{ nvidia-smi -L; $PY -c "import jax, jaxlib; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, jax.devices())"; } \
  >> "$OUT/summary.txt" 2>&1; cat "$OUT/summary.txt"
part resnet16 "${T_RESNET16:-150}" $PY benchmarks/bench_gpu.py --n 16 --out /tmp/resnet16.md
part lenet "${T_LENET:-120}" $PY benchmarks/bench_cnn_throughput.py --n 4 16 --steps 200
part resnet_small "${T_RESNET_SMALL:-60}" $PY benchmarks/bench_resnet.py --n 1 4 --time 1 4
part items_2_8 "${T_ITEMS:-90}" $PY benchmarks/run_all.py --only 2,8 --out /tmp/items.md
part resnet64 "${T_RESNET64:-150}" $PY benchmarks/bench_gpu.py --n 64 --out /tmp/resnet64.md
cat "$OUT/summary.txt"
