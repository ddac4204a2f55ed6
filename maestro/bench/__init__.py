"""Benchmarks behind ``maestro bench NAME``: each measures a baseline in the same run and reports ratios.

Every report has DESIGN.md's shape: ``{"bench", "machine", "metrics", "baseline", "targets"}``.
"""

from __future__ import annotations

from typing import Any

from maestro.bench.report import BenchReport
from maestro.core.errors import InvalidRequest
from maestro.core.settings import Settings

BENCHES = ("router", "pii", "rag", "cypher", "codegen")

__all__ = ["BENCHES", "BenchReport", "run_bench"]


def run_bench(name: str, *, settings: Settings, quick: bool = False) -> dict[str, Any]:
    """Run the named benchmark and return its report as a JSON-safe dict."""
    if name == "router":
        from maestro.bench.router import bench_router

        return bench_router(settings, quick=quick).to_dict()
    if name == "pii":
        from maestro.bench.pii import bench_pii

        return bench_pii(settings, quick=quick).to_dict()
    if name == "rag":
        from maestro.bench.rag import bench_rag

        return bench_rag(settings, quick=quick).to_dict()
    if name == "cypher":
        from maestro.bench.cypher import bench_cypher

        return bench_cypher(settings, quick=quick).to_dict()
    if name == "codegen":
        from maestro.bench.codegen import bench_codegen

        return bench_codegen(settings, quick=quick).to_dict()
    raise InvalidRequest(f"unknown benchmark '{name}': choose one of {', '.join(BENCHES)}")
