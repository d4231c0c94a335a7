#!/usr/bin/env python3
"""Draw docs/bench/results.png from docs/bench/results.json (written by
keyval-bench): one group of bars per phase, each engine's rate relative to
the fastest engine in that phase.

Usage: chart.py RESULTS_JSON OUTPUT_PNG
"""
from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402



def main(src: str, dst: str) -> None:
    with open(src, encoding="utf-8") as f:
        res = json.load(f)
    engines: dict[str, dict[str, float]] = res["engines"]
    phases: list[str] = res["phases"]  # written by keyval-bench, in table order
    names = ["KeyVal"] + sorted(n for n in engines if n != "KeyVal")
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(13, 5.5))
    for j, name in enumerate(names):
        xs, ys = [], []
        for i, phase in enumerate(phases):
            best = max(e[phase] for e in engines.values())
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(engines[name][phase] / best)
        ax.bar(xs, ys, width * 0.9, label=name)
    ax.set_xticks(range(len(phases)))
    ax.set_xticklabels([p.replace(" (", "\n(") for p in phases], fontsize=9)
    ax.set_ylabel("rate relative to the fastest engine")
    ax.set_ylim(0, 1.08)
    ax.set_title(f"KeyVal vs peers, same run ({res['machine']})", fontsize=9)
    ax.legend(ncol=len(names), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
