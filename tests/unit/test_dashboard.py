"""The Grafana dashboard queries only metrics the gateway exports, and shows all of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from routerpc_gateway.metrics import TalliesCollector

GATEWAY_METRICS = TalliesCollector()

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "routerpc-dashboard.json"


def _exported() -> set[str]:
    """Series names the gateway's metric families expose."""
    names = set()
    for metric in GATEWAY_METRICS.collect():
        if not metric.name.startswith("routerpc_"):
            continue
        if metric.type == "counter":
            names.add(metric.name + "_total")
        elif metric.type == "histogram":
            names.update(metric.name + suffix for suffix in ("_bucket", "_count", "_sum"))
        else:
            names.add(metric.name)
    return names


def _queried() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return {name for e in exprs for name in re.findall(r"\brouterpc_[a-z_]+", e)}


def test_every_dashboard_query_names_an_exported_metric() -> None:
    assert _queried() <= _exported(), _queried() - _exported()


def test_every_exported_metric_family_is_on_the_dashboard() -> None:
    queried = {re.sub(r"_(bucket|count|sum)$", "", n) for n in _queried()}
    families = {
        m.name + ("_total" if m.type == "counter" else "")
        for m in GATEWAY_METRICS.collect()
        if m.name.startswith("routerpc_")
    }
    assert families <= queried, families - queried


def test_dashboard_panels_have_unique_ids_and_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["templating"]["list"][0]["name"] == "datasource"
