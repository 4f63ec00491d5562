"""Print a results JSON as the Markdown tables of docs/performance.md:
``python -m bench.table bench/results/latest.json [before.json]``."""

from __future__ import annotations

import json
import sys

from .__main__ import describe


def markdown(report: dict) -> str:
    lines = ["| id | database | figure | baseline / ratio | target | met |", "|---|---|---|---|---|---|"]
    for kind, figures in report["databases"].items():
        if "skipped" in figures:
            lines.append(f"| * | {kind} | skipped: {figures['skipped']} | | | |")
            continue
        for pid, m in figures["measures"].items():
            if m.get("error"):
                lines.append(f"| {pid} | {kind} | error: {m['error'][:80]} | | | no |")
                continue
            figure, base = describe(pid, m)
            met = {True: "**yes**", False: "no", None: "-"}[m.get("met")]
            lines.append(f"| {pid} | {kind} | {figure} | {base} | {m.get('target', '')} | {met} |")
    for kind, figures in report["databases"].items():
        stored = figures.get("storage")
        if stored and stored.get("bytes_per_event"):
            lines.append(
                f"\nStorage on {kind} after seeding: {stored['events']:,} audit events take "
                f"{stored['audit_bytes'] / 2**20:,.0f} MiB with their indexes "
                f"({stored['bytes_per_event']} bytes per event); the whole database "
                f"{stored['database_bytes'] / 2**20:,.0f} MiB."
            )
    for kind, figures in report["databases"].items():
        if "skipped" not in figures:
            lines.append(
                f"\nLoad average during the {kind} run (1, 5, 15 min): {figures.get('load_average_start')} at "
                f"the start, {figures.get('load_average_end')} at the end."
            )
    return "\n".join(lines)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(f"### {path}\n")
        print(markdown(json.load(open(path))))
        print()
