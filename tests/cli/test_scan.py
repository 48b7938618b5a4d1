"""``aegis-vault scan`` and ``redact`` as real processes over real files.

Exit codes: 0 nothing found, 1 findings, 2 bad input. The output never shows a secret;
a vault value found marks its credential exposed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

VALUE = "sk_live_ScanCliCanary0000000000042"
GITHUB = "ghp_" + "Zq8x" * 9  # a provider-shaped token the vault does not hold


def leaked(*outputs: str) -> bool:
    forms = (VALUE, base64.b64encode(VALUE.encode()).decode(), VALUE.encode().hex(), GITHUB)
    return any(form in output for output in outputs for form in forms)


def tree(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hello')\n")
    (root / "deploy.yml").write_text(f"env:\n  STRIPE: {base64.b64encode(VALUE.encode()).decode()}\n")
    return root


def test_scan_finds_a_vault_value_encoded_in_a_file_marks_it_exposed_and_never_prints_it(env_vault, tmp_path):
    assert env_vault("add", "stripe-live", input=VALUE).returncode == 0
    result = env_vault("scan", str(tree(tmp_path / "repo")))
    assert result.returncode == 1, result.err
    assert "deploy.yml:2:11" in result.out and "stripe-live" in result.out and "base64" in result.out
    assert "marked exposed: stripe-live" in result.err
    assert not leaked(result.out, result.err)
    listed = json.loads(env_vault("list", "--json").out)
    assert [c["status"] for c in listed] == ["exposed"]


def test_a_clean_tree_exits_zero(env_vault, tmp_path):
    (tmp_path / "clean").mkdir()
    (tmp_path / "clean" / "a.txt").write_text("nothing to see\n")
    result = env_vault("scan", str(tmp_path / "clean"))
    assert result.returncode == 0, result.err
    assert "no secrets found" in result.err


def test_provider_rules_work_without_the_vault(cli, tmp_path):
    (tmp_path / "ci.sh").write_text(f'export GITHUB_TOKEN="{GITHUB}"\n')
    result = cli("scan", "--no-vault", str(tmp_path / "ci.sh"))
    assert result.returncode == 1, result.err
    assert "github-pat" in result.out and not leaked(result.out, result.err)


def test_json_and_sarif_outputs_are_machine_readable_and_hold_no_secret(env_vault, tmp_path):
    assert env_vault("add", "stripe-live", input=VALUE).returncode == 0
    root = tree(tmp_path / "repo")
    as_json = env_vault("scan", "--json", str(root))
    found = json.loads(as_json.out)
    assert [(f["credential"], f["encoding"], f["line"]) for f in found] == [("stripe-live", "base64", 2)]
    as_sarif = env_vault("scan", "--sarif", str(root))
    sarif = json.loads(as_sarif.out)
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    assert not leaked(as_json.out, as_sarif.out)


def test_stdin_is_scanned_with_a_dash(env_vault):
    assert env_vault("add", "stripe-live", input=VALUE).returncode == 0
    result = env_vault("scan", "-", input=f"log line\nkey={VALUE.encode().hex()}\n")
    assert result.returncode == 1 and "-:2:5" in result.out and not leaked(result.out, result.err)


def test_a_baseline_accepts_current_findings_and_still_reports_new_ones(cli, tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "old.sh").write_text(f'TOKEN="{GITHUB}"\n')
    baseline = tmp_path / "baseline.json"
    assert cli("scan", "--no-vault", "--write-baseline", str(baseline), str(root)).returncode == 0
    assert GITHUB not in baseline.read_text()
    assert cli("scan", "--no-vault", "--baseline", str(baseline), str(root)).returncode == 0
    (root / "new.sh").write_text('KEY="glpat-' + "Ab3d" * 5 + '"\n')
    result = cli("scan", "--no-vault", "--baseline", str(baseline), str(root))
    assert result.returncode == 1 and "new.sh" in result.out and "old.sh" not in result.out


def test_redact_masks_every_vault_value_in_a_stream(env_vault):
    assert env_vault("add", "stripe-live", input=VALUE).returncode == 0
    text = f"a {VALUE} b {base64.b64encode(VALUE.encode()).decode()} c\n"
    result = env_vault("redact", input=text)
    assert result.returncode == 0, result.err
    assert result.out == "a [aegis:stripe-live] b [aegis:stripe-live] c\n"


def test_bad_input_is_one_line_and_exit_two(cli, tmp_path):
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rules]]\nid = "broken"\nregex = "("\n')
    result = cli("scan", "--no-vault", "--rules", str(bad), str(tmp_path))
    assert result.returncode == 2 and result.err.count("\n") == 1 and "broken" in result.err
    both = cli("scan", "--no-vault", "--staged", "--git-log")
    assert both.returncode == 2 and both.err.count("\n") == 1
