"""Write benchmarks/RESULTS-gpu.md from the files that ``benchmarks/gpu_session.sh`` leaves in its output folder.

The device machine's call returns the session's logs (one per part), its ``summary.txt`` (device, jax version, each
part's exit status and seconds) and ``lowering.json`` (every lowering measured there, with the milliseconds of each
candidate). This script copies what they say into one table, unchanged: the rows each benchmark printed, and the
lowering measurements. Several sessions' folders can be given: each part's rows are listed per session, in the order
given::

    python benchmarks/gpu_results.py FOLDER [FOLDER ...] [--out benchmarks/RESULTS-gpu.md]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))

#: The parts of gpu_session.sh, in its order, and what each measures.
PARTS = {
    "resnet16": "item 12: ResNet-20 D-PSGD, n = 16, batch 128 (bench_gpu.py --n 16)",
    "lenet": "item 9-10: LeNet-5, the stack vs a loop of per-worker steps, every lowering at n = 16 "
             "(bench_cnn_throughput.py --n 4 16 --steps S)",
    "resnet_small": "item 11: ResNet-20 step vs n isolated steps, n = 1, 4 (bench_resnet.py --n 1 4 --time 1 4)",
    "items_2_8": "items 2 and 8: compressed steps vs D-PSGD and a NumPy loop; the 45-configuration sweep "
                 "(run_all.py --only 2,8)",
    "resnet64": "item 12: ResNet-20 D-PSGD, n = 64, batch 128 (bench_gpu.py --n 64)",
}


def rows_of(log: str) -> list[tuple[str, str]]:
    """(benchmark, measured) pairs a part printed: run_all's ``N. what: value (target ...)`` lines and the tuples the
    benchmark modules print; repeated rows once."""
    out = []
    for line in log.splitlines():
        line = line.strip()
        if line.startswith("("):
            try:
                row = ast.literal_eval(line)
            except (ValueError, SyntaxError):
                continue
            pair = (str(row[0]), str(row[1]))
        elif re.match(r"^\d+\. ", line):
            what, _, rest = line.partition(": ")
            pair = (what, rest)
        else:
            continue
        if pair not in out:
            out.append(pair)
    return out


def lowering_rows(path: str) -> list[str]:
    with open(path) as f:
        data = json.load(f)
    lines = []
    for entry in data.values():
        p = entry["key"]["problem"]
        ms = ", ".join(f"{k} {v:.3g} ms" for k, v in sorted(entry["ms"].items(), key=lambda kv: kv[1]))
        model = str(p.get("model", "?")).split("(")[0]
        n = p["samples"][0] if p.get("samples") else "?"
        lines.append(f"| {model} | {n} | {p.get('batch', '?')} | "
                     f"{entry['choice']} | {ms} |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS-gpu.md"))
    args = ap.parse_args(argv)
    logs, summary, lowering = {name: [] for name in PARTS}, [], []
    for folder in args.folders:
        for name in PARTS:
            path = os.path.join(folder, f"{name}.log")
            if os.path.exists(path):
                with open(path) as f:
                    logs[name].append((folder, f.read()))
        with open(os.path.join(folder, "summary.txt")) as f:
            summary.append((folder, f.read().strip()))
        if os.path.exists(os.path.join(folder, "lowering.json")):
            lowering += lowering_rows(os.path.join(folder, "lowering.json"))
    lines = ["# GPU benchmark results (issue 25)", "",
             "Measured on a lent device machine by `bash benchmarks/gpu_session.sh` (each part its own process and time "
             "limit); this file is written from the returned logs by `python benchmarks/gpu_results.py`. The rows are "
             "what each benchmark printed, unchanged.", ""]
    for folder, text in summary:
        lines += [f"Session `{os.path.basename(os.path.normpath(folder))}`:", "", "```", text, "```", ""]
    for name, what in PARTS.items():
        if not logs[name]:
            continue
        lines += [f"## {what}", "", "| session | benchmark | measured |", "|---|---|---|"]
        for folder, text in logs[name]:
            session = os.path.basename(os.path.normpath(folder))
            lines += [f"| {session} | {a} | {b.replace('|', '/')} |" for a, b in rows_of(text)]
        lines.append("")
    if lowering:
        lines += ["## Lowerings measured (`lowering.json`: every \"auto\" timed on the device, fastest first)", "",
                  "| model | n | batch | choice | candidates (ms per 2 gradient steps) |", "|---|---|---|---|---|"]
        lines += list(dict.fromkeys(lowering))
        lines.append("")
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
