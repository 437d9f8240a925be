"""The Grafana dashboards read at a glance: the JSON is what Grafana's own schema types
(the Grafana Foundation SDK's, generated from Grafana's schemas) can carry, and every
panel has a unit and deliberate thresholds, every table named columns.  Their queries
run against a real Prometheus in tests/test_fleet.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "grafana").glob("*.json"))
# Fields newer than the SDK's schema (Grafana 10.1) that Grafana 11-12 reads: a query
# variable's `definition` (the query as its editor shows it).
NEWER_FIELDS = {"definition"}
GRAFANA_DEFAULT_THRESHOLDS = [{"color": "green", "value": None}, {"color": "red", "value": 80}]


def boards() -> list[tuple[str, dict[str, Any]]]:
    return [(path.stem, json.loads(path.read_text())) for path in DASHBOARDS]


def panels() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{name}/{panel['title']}", panel) for name, board in boards() for panel in board["panels"]]


def lost(original: Any, again: Any, path: str = "") -> list[str]:
    """What of `original` did not survive a trip through the schema types."""
    if isinstance(original, dict):
        if not isinstance(again, dict):
            return [f"{path}: not an object after the trip"]
        out = []
        for key, value in original.items():
            if key not in again:
                if key not in NEWER_FIELDS:
                    out.append(f"{path}/{key}: unknown to the schema")
                continue
            out += lost(value, again[key], f"{path}/{key}")
        return out
    if isinstance(original, list):
        if not isinstance(again, list) or len(again) != len(original):
            return [f"{path}: list changed"]
        return [x for i, (a, b) in enumerate(zip(original, again)) for x in lost(a, b, f"{path}[{i}]")]
    return [] if original == again else [f"{path}: {original!r} became {again!r}"]


def round_trip(board: dict[str, Any]) -> Any:
    need(sys.version_info >= (3, 11), "grafana-foundation-sdk needs Python 3.11 (CI's is)")
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    plugins.register_default_plugins()  # panel options and field config decode into each panel type's types
    return json.loads(json.dumps(Dashboard.from_json(board), cls=JSONEncoder))


@pytest.mark.parametrize(("name", "board"), boards())
def test_the_json_survives_grafanas_schema_types(name: str, board: dict[str, Any]) -> None:
    assert lost(board, round_trip(board)) == []


def test_the_schema_check_catches_a_misspelt_field() -> None:
    _name, board = boards()[0]
    broken = json.loads(json.dumps(board))
    broken["panels"][0]["fieldConfig"]["defaults"]["unti"] = "bytes"
    broken["panels"][1]["fieldConfig"]["defaults"]["threshold"] = {"mode": "absolute", "steps": []}
    assert [p for p in lost(broken, round_trip(broken)) if p.endswith("unknown to the schema")] == [
        "/panels[0]/fieldConfig/defaults/unti: unknown to the schema",
        "/panels[1]/fieldConfig/defaults/threshold: unknown to the schema",
    ]


@pytest.mark.parametrize(("title", "panel"), panels())
def test_every_panel_has_a_unit_and_its_own_thresholds(title: str, panel: dict[str, Any]) -> None:
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults.get("unit"), f"{title}: no unit"
    steps = defaults.get("thresholds", {}).get("steps")
    assert steps, f"{title}: no thresholds"
    assert steps != GRAFANA_DEFAULT_THRESHOLDS, f"{title}: Grafana's default green/red-at-80"
    assert steps[0]["value"] is None
    assert all(isinstance(s["value"], (int, float)) for s in steps[1:])
    assert panel.get("description"), f"{title}: no description"


def test_units_of_the_quantities() -> None:
    units = {}
    for title, panel in panels():
        fc = panel["fieldConfig"]
        names = {o["matcher"]["options"]: o for o in fc["overrides"] if o["matcher"]["id"] == "byName"}
        units[title] = fc["defaults"]["unit"]
        for field, override in names.items():
            for prop in override["properties"]:
                if prop["id"] == "unit":
                    units[f"{title}:{field}"] = prop["value"]
    assert units["host-detail/NUMA nodes:memory"] == "bytes"
    assert units["host-detail/C-states"] == "s"
    assert units["host-detail/DVFS"] == "hertz"
    assert units["host-detail/Swap for hibernation"] == "bytes"
    assert units["fleet-power-capabilities/S3 ready (power-saving hosts)"] == "percentunit"


@pytest.mark.parametrize(("title", "panel"), [(t, p) for t, p in panels() if p["type"] == "table"])
def test_tables_name_their_columns(title: str, panel: dict[str, Any]) -> None:
    """No "Value", "Value #A" or "instance\\state" left for a reader to decode: a table of
    several queries or a matrix renames them; one of a single query renames or drops Value."""
    renamed: dict[str, str] = {}
    excluded: set[str] = set()
    matrix = False
    for step in panel.get("transformations", []):
        if step["id"] == "organize":
            renamed.update(step["options"].get("renameByName", {}))
            excluded |= {k for k, v in step["options"].get("excludeByName", {}).items() if v}
        matrix = matrix or step["id"] == "groupingToMatrix"
    refs = [t["refId"] for t in panel["targets"]]
    raw = {f"Value #{r}" for r in refs} if len(refs) > 1 else {"Value"}
    if matrix:
        (grouping,) = [s for s in panel["transformations"] if s["id"] == "groupingToMatrix"]
        raw = {f"{grouping['options']['rowField']}\\{grouping['options']['columnField']}"}
    for column in raw:
        assert column in renamed or column in excluded, f"{title}: column {column!r} keeps its raw name"
    assert all(t.get("format") == "table" and t.get("instant") for t in panel["targets"]), title


def test_the_fleet_host_table_shows_each_state_supported_and_ready() -> None:
    fleet = dict(boards())["fleet-power-capabilities"]
    (hosts,) = [p for p in fleet["panels"] if p["title"] == "Hosts"]
    (mapping,) = hosts["fieldConfig"]["defaults"]["mappings"]
    assert {k: v["text"] for k, v in mapping["options"].items()} == {
        "0": "not supported",
        "1": "supported, not ready",
        "2": "ready",
    }
    (grouping,) = [s for s in hosts["transformations"] if s["id"] == "groupingToMatrix"]
    assert grouping["options"]["columnField"] == "state"
