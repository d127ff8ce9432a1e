"""The dependency graph of recipes: ``base_model: recipe:<name>`` edges."""

from __future__ import annotations

from collections.abc import Mapping


def find_cycle(edges: Mapping[str, str | None]) -> list[str] | None:
    """A cycle in a graph where each recipe has at most one upstream, as [a, b, ..., a]."""
    for start in sorted(edges):
        seen: list[str] = []
        node: str | None = start
        while node is not None and node in edges:
            if node in seen:
                return [*seen[seen.index(node) :], node]
            seen.append(node)
            node = edges[node]
    return None


def topological_order(edges: Mapping[str, str | None]) -> list[str]:
    """Recipes upstream first; ties by name, so the order is stable. Assumes no cycle."""
    order: list[str] = []
    placed: set[str] = set()

    def place(name: str) -> None:
        if name in placed:
            return
        upstream = edges.get(name)
        if upstream is not None and upstream in edges:
            place(upstream)
        placed.add(name)
        order.append(name)

    for name in sorted(edges):
        place(name)
    return order
