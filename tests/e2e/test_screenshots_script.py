"""``scripts/screenshots.py`` end to end: every screen is written, no secret value is on any.

The script runs as a real subprocess into a temp folder. The test does its own scan,
independent of the script's check: it records every value the demo seeding stores (by
wrapping ``Credentials.add``/``rotate`` while a demo vault is seeded; the demo values
are deterministic) and looks for each one in the text of every SVG. A planted leak
proves that the script's own check fails when it should.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "screenshots.py"
EXPECTED = ("unlock", "vault", "vault-80x24", "filter", "add", "totp-form", "rotate", "revoke", "destroy", "grants",
            "approval", "help", "settings", "palette", "rotation", "review")
# Typed into the forms by the script; they must show masked.
TYPED = ("lin_api_Demo7fQ2mZx9KpL4wR8sT1vY", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")


def run_script(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AEGIS_")}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, env=env, timeout=240,
                          cwd=ROOT)


def demo_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every value the demo seeding stores, every version, revoked ones included."""
    from aegis_tui.core import demo
    from aegis_tui.core.crypto import new_kdf_params
    from aegis_tui.core.secret import Secret

    stored: list[str] = []

    class Recording(demo.Credentials):  # type: ignore[name-defined,misc]
        def add(self, name: str, value: Secret, *args: Any, **kwargs: Any) -> Any:
            stored.append(value.reveal_text())
            return super().add(name, value, *args, **kwargs)

        def rotate(self, name: str, value: Secret, *args: Any, **kwargs: Any) -> Any:
            stored.append(value.reveal_text())
            return super().rotate(name, value, *args, **kwargs)

    monkeypatch.setattr(demo, "Credentials", Recording)
    folder = tmp_path / "demo"
    folder.mkdir(mode=0o700)
    vault = demo.create_demo_vault(str(folder), new_kdf_params(memory_kib=8, iterations=1, lanes=1),
                                   demo.SettableClock(1_795_000_000.0))
    vault.close()
    assert len(stored) >= 40
    return stored


def svg_plain_text(svg: str) -> str:
    """All drawn text of a Textual SVG, tags removed, entities and no-break spaces decoded."""
    texts = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return "\n".join(html.unescape(re.sub(r"<[^>]+>", "", text)).replace("\xa0", " ") for text in texts)


def visible(secret: str, text: str) -> bool:
    """Any line of ``secret`` (or, for long lines, any 12-character piece of it) in ``text``."""
    for line in (part.strip() for part in secret.splitlines()):
        if len(line) < 6:
            continue
        if len(line) <= 12:
            if line in text:
                return True
        elif any(line[i:i + 12] in text for i in range(len(line) - 11)):
            return True
    return False


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[bytes]]:
    out = tmp_path_factory.mktemp("screenshots")
    return out, run_script("--out", str(out))


def test_every_screen_is_written(shots: tuple[Path, subprocess.CompletedProcess[bytes]]) -> None:
    out, result = shots
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    written = sorted(path.stem for path in out.glob("*.svg"))
    assert written == sorted(EXPECTED)
    for name in EXPECTED:
        svg = (out / f"{name}.svg").read_text(encoding="utf-8")
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>"), name
        assert "aegis-vault" in svg_plain_text(svg), f"{name}.svg does not look like the app"
    vault = svg_plain_text((out / "vault.svg").read_text(encoding="utf-8"))
    assert "40 of 40" in vault and "github-pat-ci" in vault
    assert "5 of 40" in svg_plain_text((out / "filter.svg").read_text(encoding="utf-8"))
    assert "current code" in svg_plain_text((out / "totp-form.svg").read_text(encoding="utf-8"))


def test_no_credential_value_is_visible(shots: tuple[Path, subprocess.CompletedProcess[bytes]], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out, result = shots
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    secrets = [*demo_values(tmp_path, monkeypatch), *TYPED]
    output = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
    for path in sorted(out.glob("*.svg")):
        svg = path.read_text(encoding="utf-8")
        text = svg_plain_text(svg)
        leaked = [index for index, secret in enumerate(secrets) if visible(secret, text) or secret in svg]
        assert not leaked, f"{path.name} shows secret value(s) number {leaked} (values not printed)"
    assert not any(visible(secret, output) for secret in secrets), "the script printed a secret value"
    # The masked inputs are there, only masked: the typed value shows as one bullet per character.
    add = svg_plain_text((out / "add.svg").read_text(encoding="utf-8"))
    assert "•" * len(TYPED[0]) in add


def test_the_scripts_check_catches_a_planted_leak(shots: tuple[Path, subprocess.CompletedProcess[bytes]],
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = shots
    planted = tmp_path / "planted"
    planted.mkdir()
    for path in out.glob("*.svg"):
        (planted / path.name).write_bytes(path.read_bytes())
    assert run_script("--check-only", "--out", str(planted)).returncode == 0

    value = next(v for v in demo_values(tmp_path, monkeypatch) if v.startswith("sk_live_"))  # stripe-live
    svg = (planted / "vault.svg").read_text(encoding="utf-8")
    drawn = html.escape(value).replace(" ", "&#160;")
    # Drawn as Textual draws a revealed value: one text run, in the middle of a line.
    svg = re.sub(r"(<text[^>]*>)(value&#160;+)", lambda m: m.group(1) + m.group(2) + drawn, svg, count=1)
    assert value in html.unescape(svg)
    (planted / "vault.svg").write_text(svg, encoding="utf-8")

    caught = run_script("--check-only", "--out", str(planted))
    assert caught.returncode == 1
    report = caught.stderr.decode(errors="replace")
    assert "vault.svg: stripe-live" in report
    assert value not in report + caught.stdout.decode(errors="replace")


def test_runs_are_identical(shots: tuple[Path, subprocess.CompletedProcess[bytes]],
                            tmp_path: Path) -> None:
    out, first = shots
    assert first.returncode == 0
    again = tmp_path / "again"
    second = run_script("--out", str(again))
    assert second.returncode == 0, second.stderr.decode(errors="replace")[-3000:]
    changed = [name for name in EXPECTED
               if (out / f"{name}.svg").read_bytes() != (again / f"{name}.svg").read_bytes()]
    assert not changed, f"these screenshots differ between two runs: {changed}"
