"""The region drill-down: counts per region code (from the database) summed into the
children of the region asked for (districts when none is), from the configured tree
(server/cases/regions.py: a child's code starts with its parent's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tiaojie.server.cases.regions import LEVELS


@dataclass(frozen=True)
class RegionTree:
    nodes: list[dict[str, Any]]

    def path(self, code: str) -> list[dict[str, Any]]:
        """The nodes from the district down to `code` ([] if it is not in the tree)."""
        found: list[dict[str, Any]] = []
        level = self.nodes
        while True:
            step = next((n for n in level if code.startswith(n["code"])), None)
            if step is None:
                return found if found and found[-1]["code"] == code else []
            found.append(step)
            if step["code"] == code:
                return found
            level = step.get("children", [])

    def rollup(self, region: str | None, rows: list[Any]) -> dict[str, Any]:
        """{"path": the breadcrumb to `region`, "level": what the items are, "items": each
        child with its count and whether it has children, "elsewhere": cases in `region`
        itself or under a code the tree no longer holds}."""
        path = self.path(region) if region else []
        children = path[-1].get("children", []) if path else ([] if region else self.nodes)
        counts = {c["code"]: 0 for c in children}
        elsewhere = 0
        for row in rows:
            code, n = row[0], int(row[1])
            child = next((c for c in children if code.startswith(c["code"])), None)
            if child is None:
                elsewhere += n
            else:
                counts[child["code"]] += n
        depth = len(path)
        return {
            "path": [{"code": p["code"], "name": p["name"]} for p in path],
            "level": LEVELS[depth] if depth < len(LEVELS) and children else None,
            "items": [
                {
                    "code": c["code"],
                    "name": c["name"],
                    "count": counts[c["code"]],
                    "has_children": bool(c.get("children")),
                }
                for c in children
            ],
            "elsewhere": elsewhere,
        }
