"""`grafana-dashboard` (grafana_dashboard v0, we provide): the Trino dashboard.

The dashboard is ``src/grafana_dashboards/trino.json``, LZMA-compressed and
base64-encoded with `cosl` (imported only when there is a relation and this
unit is the leader). Grafana reloads when ``uuid`` changes, so a new uuid is
written only when the templates themselves differ from what is published.
"""

from __future__ import annotations

import json
import pathlib
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ops

    from core.observability import Topology

ENDPOINT = "grafana-dashboard"
DASHBOARDS_DIR = pathlib.Path(__file__).resolve().parents[1] / "grafana_dashboards"


def templates(topology: Topology) -> dict[str, Any]:
    """Every dashboard file, compressed, keyed as Grafana expects (`file:<name>`)."""
    from cosl import DashboardPath40UID, LZMABase64  # noqa: PLC0415  (lazy)

    found = {}
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        found[f"file:{path.name}"] = {
            "charm": topology.charm_name,
            "content": LZMABase64.compress(path.read_text()),
            # The publishing (leader) unit too, as Grafana's side reads it: a new
            # leader republishes once.
            "juju_topology": {
                "model": topology.model,
                "model_uuid": topology.model_uuid,
                "application": topology.application,
                "unit": topology.unit,
            },
            # Grafana adds the juju_model/juju_application/juju_unit dropdowns
            # and the ${prometheusds} datasource variable the panels use.
            "inject_dropdowns": True,
            "dashboard_alt_uid": DashboardPath40UID.generate(topology.charm_name, path.name),
        }
    return found


def publish(model: ops.Model, topology: Topology) -> None:
    """Leader only: publish the dashboards where they differ from what is there."""
    relations = model.relations.get(ENDPOINT, [])
    if not relations or not model.unit.is_leader():
        return
    wanted = templates(topology)
    for relation in relations:
        databag = relation.data[model.app]
        try:
            published = json.loads(databag.get("dashboards", "{}")).get("templates")
        except (ValueError, AttributeError):
            published = None
        if published == wanted:
            continue
        databag["dashboards"] = json.dumps(
            {"templates": wanted, "uuid": str(uuid.uuid4())}, sort_keys=True
        )
