"""A baseline accepts known findings and lets new ones through; it never stores a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from aegis_tui.core.errors import UsageError
from aegis_tui.core.scan.baseline import load_baseline, new_findings, write_baseline
from aegis_tui.core.scan.rules import default_rules

OLD = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
NEW = "ghp_" + "Zy8xW6vU4tS2rQ0pO8nM6lK4jI2hG0fE8dC6"


def test_round_trip_suppresses_accepted_findings_and_lets_new_ones_through(tmp_path: Path) -> None:
    rules = default_rules()
    accepted = rules.scan(f"a = {OLD}\n", "app.py")
    baseline = tmp_path / "baseline.json"
    write_baseline(baseline, accepted)

    later = rules.scan(f"# a new first line\na = {OLD}\nb = {NEW}\n", "app.py")

    assert len(later) == 2
    assert [finding.line for finding in new_findings(later, load_baseline(baseline))] == [3]
    assert OLD not in baseline.read_text()


def test_a_missing_baseline_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nope.json does not exist"):
        load_baseline(tmp_path / "nope.json")


@pytest.mark.parametrize("content", ["{not json", "[]", '{"format": "other", "findings": []}',
                                     '{"format": "aegis-vault-baseline/1", "findings": [{"fp": 1}]}'])
def test_a_malformed_baseline_is_a_usage_error(tmp_path: Path, content: str) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(content)
    with pytest.raises(UsageError, match="baseline file"):
        load_baseline(baseline)
