"""`metrics-endpoint` (prometheus_scrape v0, we provide): every unit's /metrics.

The leader publishes one scrape job whose ``*`` target Prometheus expands to
every unit that wrote its address, so coordinators and workers are all
scraped; each unit, leader or not, writes its own address and name. The
alert rules come from ``src/prometheus_alert_rules`` with this application's
topology; `cosl` (heavy) is imported only when there is a relation and this
unit is the leader.
"""

from __future__ import annotations

import json
import pathlib
from typing import TYPE_CHECKING, Any

from core import observability, yamltext

if TYPE_CHECKING:
    import ops

    from core.observability import Topology

ENDPOINT = "metrics-endpoint"
RULES_DIR = pathlib.Path(__file__).resolve().parents[1] / "prometheus_alert_rules"


def alert_rules(topology: Topology, files: list[str]) -> dict[str, Any]:
    """The rule files for this role, scoped to this application, with topology labels."""
    from cosl import AlertRules, JujuTopology  # noqa: PLC0415

    juju_topology = JujuTopology(
        model=topology.model,
        model_uuid=topology.model_uuid,
        application=topology.application,
        charm_name=topology.charm_name,
    )
    rules = AlertRules(query_type="promql", topology=juju_topology)
    for name in files:
        document = yamltext.load((RULES_DIR / name).read_text())
        for group in document["groups"]:
            for rule in group["rules"]:
                rule["expr"] = observability.scope_expression(rule["expr"], topology)
        rules.add(document, group_name_prefix=juju_topology.identifier)
    return rules.as_dict()


def publish(
    model: ops.Model, topology: Topology, rule_files: list[str], port: int, scraped: bool = True
) -> None:
    """Write our side of every metrics-endpoint relation (only what changed).

    A unit that runs no Trino by design (a standby coordinator) leaves out its
    address, so Prometheus neither scrapes it nor alerts that it is down.
    """
    relations = model.relations.get(ENDPOINT, [])
    if not relations:
        return
    address = observability.unit_address(topology.unit, topology.application, topology.model)
    unit_data = {
        "prometheus_scrape_unit_address": address if scraped else "",
        "prometheus_scrape_unit_name": topology.unit if scraped else "",
    }
    app_data: dict[str, str] = {}
    if model.unit.is_leader():
        app_data = {
            "scrape_jobs": json.dumps(observability.scrape_jobs(port), sort_keys=True),
            "scrape_metadata": json.dumps(observability.scrape_metadata(topology), sort_keys=True),
            "alert_rules": json.dumps(alert_rules(topology, rule_files), sort_keys=True),
        }
    for relation in relations:
        # ops sends only the keys whose value changed (none: no relation-set).
        relation.data[model.unit].update(unit_data)
        if app_data:
            relation.data[model.app].update(app_data)
