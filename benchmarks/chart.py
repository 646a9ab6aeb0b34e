"""Draw benchmarks/results/latest.png from latest.json (run with the peers venv's Python)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PANELS: list[tuple[str, list[tuple[str, str]], bool]] = [
    ("Throughput (jobs/s, higher is better; W2/W5 to the last completion)",
     [("w1_single", "W1 add"), ("w1_bulk", "W1 bulk"), ("w2_c1", "W2 c=1"),
      ("w2_cHIGH", "W2 high c"), ("w5_p2", "W5 2 procs"), ("w5_p4", "W5 4 procs")], True),
    ("Latency (ms, lower is better)",
     [("w3_p50", "W3 p50"), ("w3_p99", "W3 p99"), ("w4_p50", "W4 p50"),
      ("w4_p99", "W4 p99")], True),
    ("Per job (lower is better)",
     [("w2_rt_c1", "round trips"), ("w2_cpu_us_c1", "worker CPU µs/100"),
      ("w5_mem", "Redis bytes/100")], False),
]
SCALE = {"w2_cpu_us_c1": 0.01, "w5_mem": 0.01}


def main(src: str, dst: str) -> None:
    data: dict[str, Any] = json.loads(Path(src).read_text())
    summary = data["summary"]
    # The highest W2 concurrency level that ran (keys are w2_c<level>).
    levels = [int(k[4:]) for k in summary if k.startswith("w2_c") and k[4:].isdigit()]
    high = max(levels, default=1)
    if high > 1:
        summary = {**summary, "w2_cHIGH": summary[f"w2_c{high}"]}
    libs = list(data["libs"])
    labels = {k: v["label"] for k, v in data["libs"].items()}
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(11, 11))
    width = 0.8 / max(1, len(libs))
    for ax, (title, metrics, log) in zip(axes, PANELS, strict=True):
        present = [(k, name) for k, name in metrics if k in summary]
        for j, lib in enumerate(libs):
            xs, ys, lo, hi = [], [], [], []
            for i, (key, _) in enumerate(present):
                row = summary[key]["libs"].get(lib)
                if row is None:
                    continue
                s = SCALE.get(key, 1.0)
                xs.append(i + (j - (len(libs) - 1) / 2) * width)
                ys.append(row["median"] * s)
                lo.append((row["median"] - row["min"]) * s)
                hi.append((row["max"] - row["median"]) * s)
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=labels[lib])
        names = [f"W2 c={high}" if k == "w2_cHIGH" else name for k, name in present]
        ax.set_xticks(range(len(present)), names)
        ax.set_title(title)
        if log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    # Above the top panel, not inside it: with seven libraries it covered the tallest bars.
    axes[0].legend(ncol=min(7, len(libs)), fontsize=8, loc="lower center",
                   bbox_to_anchor=(0.5, 1.08), frameon=False)
    machine = data.get("machine", {})
    fig.suptitle(f"pyqueue benchmarks — medians, bars min-max; {machine.get('nproc', '?')} cores, "
                 f"Redis {machine.get('redis', '?')}, {data['created']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
