#!/usr/bin/env python3
"""Check that the modules of `src/` import only from layers below them.

Reads every `.rs` file under `src/`, skips comments, and collects each
reference to another top-level module of the crate (`use crate::x`,
`crate::x::…`, and `super::` paths that climb out of a module). The layer
of each module is the table in docs/design.md (between its
`layers:begin` and `layers:end` markers); a module may use only modules of
lower layers. A module under src/ that the table does not list, or a row
naming a module that does not exist, fails the check too.

Usage: scripts/layers.py            check; exit 1 on an upward edge or cycle
       scripts/layers.py --graph    print every edge and every cycle
"""
from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

DESIGN = ROOT / "docs" / "design.md"


def layers_from_design() -> list[list[str]]:
    """The layer table of docs/design.md (between its layers markers):
    `| layer | `module` | owns |` rows, lowest layer first."""
    text = DESIGN.read_text()
    body = text.split("<!-- layers:begin -->", 1)[1].split("<!-- layers:end -->", 1)[0]
    by_layer: dict[int, list[str]] = defaultdict(list)
    for m in re.finditer(r"^\| (\d+) \| `([a-z_]+)` \|", body, re.M):
        by_layer[int(m.group(1))].append(m.group(2))
    if not by_layer:
        raise SystemExit("docs/design.md has no layer table between the layers markers")
    return [by_layer[k] for k in sorted(by_layer)]


# Lowest layer first. A module may import any module of a lower layer.
LAYERS: list[list[str]] = layers_from_design()

# The crate root re-exports the public API; it may name any module.
ROOT_MODULES = {"lib"}

CRATE_REF = re.compile(r"\bcrate::([A-Za-z_][A-Za-z0-9_]*)")
USE_GROUP = re.compile(r"\buse\s+crate::\{([^;]*)\}", re.S)


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def module_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def root_reexports() -> dict[str, str]:
    """Names the crate root re-exports (`pub use a::b::{C, D}`) -> module `a`,
    so that `crate::C` counts as a use of `a`."""
    names: dict[str, str] = {}
    code = strip_comments((SRC / "lib.rs").read_text())
    for m in re.finditer(r"pub\s+use\s+([a-z_][a-z0-9_]*)::([^;]*);", code, re.S):
        for name in re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\b", m.group(2)):
            if name[0].isupper():
                names.setdefault(name, m.group(1))
    return names


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    reexports = root_reexports()
    for path in sorted(SRC.rglob("*.rs")):
        me = module_of(path)
        code = strip_comments(path.read_text())
        refs = set(CRATE_REF.findall(code))
        for group in USE_GROUP.findall(code):
            for item in group.split(","):
                head = item.strip().split("::", 1)[0].strip()
                if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", head):
                    refs.add(head)
        for r in refs:
            r = reexports.get(r, r)
            if r != me and ((SRC / r).is_dir() or (SRC / f"{r}.rs").exists()):
                graph[me].add(r)
        graph.setdefault(me, set())
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    graph = edges()
    rank = {m: i for i, layer in enumerate(LAYERS) for m in layer}
    problems: list[str] = []
    upward = 0
    for me in sorted(graph):
        if me in ROOT_MODULES:
            continue
        if me not in rank:
            problems.append(f"module `{me}` is in no layer (add it to scripts/layers.py and docs/design.md)")
            continue
        for dep in sorted(graph[me]):
            if dep not in rank:
                problems.append(f"`{me}` uses `{dep}`, which is in no layer")
            elif rank[dep] >= rank[me]:
                upward += 1
                problems.append(f"`{me}` (layer {rank[me]}) uses `{dep}` (layer {rank[dep]}): an upward or sideways edge")
    for layer in LAYERS:
        for m in layer:
            if m not in graph:
                problems.append(f"docs/design.md lists `{m}`, which is not a module of src/")
    cyc = cycles(graph)
    for c in cyc:
        problems.append("import cycle: " + " <-> ".join(c))
    if "--graph" in sys.argv:
        for me in sorted(graph):
            print(f"{me:12} -> {', '.join(sorted(graph[me])) or '-'}")
        print(f"{sum(len(v) for v in graph.values())} edges, {len(cyc)} cycle(s), {upward} upward edge(s)")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"layers: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("layers: ok ({} modules, {} edges, no cycle, no upward edge)".format(
        len(graph), sum(len(v) for v in graph.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
