"""A throwaway vault full of realistic, fake credentials, for the demo and screenshots.

Every value is generated here and is worthless. Ages are spread on purpose: some
credentials are fresh, some due or overdue for rotation, one is exposed, one revoked,
a few are TOTP seeds, and the audit log has a history of reads and rotations.
Deterministic for a given ``now`` and seed, so screenshots do not change between runs.
"""

from __future__ import annotations

import os
import string
import time
from collections.abc import Callable

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.crypto import KdfParams, sha256
from aegis_tui.core.models import Kind, Status
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault

DEMO_PASSPHRASE = "demo-passphrase"
DAY = 86400.0

# name, service, kind, context, rotation days, age in days, tags
_CATALOGUE: list[tuple[str, str, Kind, str, int | None, int, tuple[str, ...]]] = [
    ("github-pat-ci", "github", Kind.ACCESS_TOKEN, "acme/dev", 90, 29, ("ci",)),
    ("github-deploy", "github", Kind.SSH_KEY, "acme/prod", 180, 168, ("deploy",)),
    ("gh-actions-ro", "github", Kind.ACCESS_TOKEN, "personal", 60, 63, ("readonly",)),
    ("stripe-live", "stripe", Kind.API_KEY, "acme/prod", 90, 400, ("payments",)),
    ("stripe-test", "stripe", Kind.API_KEY, "acme/dev", 180, 12, ("payments",)),
    ("stripe-webhook", "stripe", Kind.SECRET, "acme/prod", 180, 95, ("payments", "webhook")),
    ("aws-prod-deployer", "aws", Kind.ACCESS_TOKEN, "acme/prod", 90, 81, ("deploy",)),
    ("aws-dev-admin", "aws", Kind.ACCESS_TOKEN, "acme/dev", 90, 20, ("admin",)),
    ("aws-backup-s3", "aws", Kind.API_KEY, "acme/prod", 365, 200, ("backup",)),
    ("openai-api", "openai", Kind.API_KEY, "personal", 90, 45, ("llm",)),
    ("anthropic-api", "anthropic", Kind.API_KEY, "personal", 90, 10, ("llm",)),
    ("anthropic-team", "anthropic", Kind.API_KEY, "acme/dev", 90, 88, ("llm",)),
    ("postgres-prod", "postgres", Kind.CONNECTION_STRING, "acme/prod", 90, 130, ("db",)),
    ("postgres-staging", "postgres", Kind.CONNECTION_STRING, "acme/staging", 90, 30, ("db",)),
    ("redis-cache", "redis", Kind.PASSWORD, "acme/prod", 180, 70, ("cache",)),
    ("slack-bot", "slack", Kind.ACCESS_TOKEN, "acme/dev", 180, 150, ("chatops",)),
    ("slack-webhook-alerts", "slack", Kind.SECRET, "acme/prod", None, 300, ("alerts",)),
    ("sendgrid-mail", "sendgrid", Kind.API_KEY, "acme/prod", 180, 60, ("email",)),
    ("twilio-sms", "twilio", Kind.API_KEY, "acme/prod", 180, 175, ("sms",)),
    ("npm-publish", "npm", Kind.ACCESS_TOKEN, "personal", 365, 120, ("release",)),
    ("pypi-upload", "pypi", Kind.ACCESS_TOKEN, "personal", 365, 240, ("release",)),
    ("dockerhub-ci", "docker", Kind.ACCESS_TOKEN, "acme/dev", 180, 40, ("ci",)),
    ("gitlab-mirror", "gitlab", Kind.ACCESS_TOKEN, "acme/dev", 90, 92, ("mirror",)),
    ("sentry-dsn", "sentry", Kind.CONNECTION_STRING, "acme/prod", None, 220, ("monitoring",)),
    ("datadog-api", "datadog", Kind.API_KEY, "acme/prod", 180, 33, ("monitoring",)),
    ("cloudflare-dns", "cloudflare", Kind.ACCESS_TOKEN, "acme/prod", 180, 190, ("dns",)),
    ("tls-wildcard", "acme-ca", Kind.CERTIFICATE, "acme/prod", 90, 85, ("tls",)),
    ("vps-root", "hetzner", Kind.PASSWORD, "personal", 180, 35, ("server",)),
    ("ssh-bastion", "ssh", Kind.SSH_KEY, "acme/prod", 365, 100, ("server",)),
    ("jwt-signing", "identity", Kind.SECRET, "acme/prod", 90, 75, ("auth",)),
    ("internal-hmac", "platform", Kind.SECRET, "acme/staging", 90, 50, ("auth",)),
    ("meshy-3d", "meshy", Kind.API_KEY, "personal", None, 15, ()),
    ("perplexity-api", "perplexity", Kind.API_KEY, "personal", 90, 98, ("llm",)),
    ("restic-backup", "restic", Kind.PASSWORD, "personal", None, 500, ("backup",)),
    ("heroku-legacy", "heroku", Kind.API_KEY, "acme/legacy", 90, 700, ()),
    ("discord-bot", "discord", Kind.ACCESS_TOKEN, "personal", 180, 25, ("chatops",)),
]
_TOTP = [("github-2fa", "github", "personal"), ("aws-root-mfa", "aws", "acme/prod"),
         ("google-workspace", "google", "acme/dev"), ("npm-2fa", "npm", "personal")]
_PREFIXES = {"github": "ghp_", "stripe": "sk_live_", "openai": "sk-proj-", "anthropic": "sk-ant-api03-",
             "slack": "xoxb-", "sendgrid": "SG.", "npm": "npm_", "pypi": "pypi-", "gitlab": "glpat-"}


class _FakeBytes:
    """Deterministic filler derived by hashing a counter: reproducible screenshots,
    and no random-number generator anywhere near something that looks like a key."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._counter = 0

    def text(self, alphabet: str, length: int) -> str:
        out = []
        while len(out) < length:
            self._counter += 1
            block = sha256(f"aegis-demo/{self._seed}/{self._counter}".encode())
            out.extend(alphabet[byte % len(alphabet)] for byte in block)
        return "".join(out[:length])

    def between(self, low: int, high: int) -> int:
        self._counter += 1
        return low + sha256(f"aegis-demo/{self._seed}/{self._counter}".encode())[0] % (high - low + 1)


def _fake_value(fake: _FakeBytes, service: str, kind: Kind) -> str:
    alphabet = string.ascii_letters + string.digits
    body = fake.text(alphabet, 36)
    if kind is Kind.CONNECTION_STRING:
        return f"postgres://app:{body[:20]}@db.{service}.internal:5432/app"
    if kind in (Kind.SSH_KEY, Kind.CERTIFICATE):
        label = "OPENSSH PRIVATE KEY" if kind is Kind.SSH_KEY else "CERTIFICATE"
        lines = [fake.text(alphabet, 64) for _ in range(4)]
        return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"
    return _PREFIXES.get(service, "") + body


def _fake_totp_seed(fake: _FakeBytes) -> str:
    return fake.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 32)


class SettableClock:
    """Real time, unless pinned: seeding back-dates entries, tests freeze time."""

    def __init__(self, pinned: float | None = None) -> None:
        self.pinned = pinned

    def __call__(self) -> float:
        return time.time() if self.pinned is None else self.pinned


def create_demo_vault(folder: str, kdf: KdfParams, clock: SettableClock | None = None) -> Vault:
    """A new demo vault in ``folder``, seeded and locked, ready for the unlock screen."""
    clock = clock or SettableClock()
    now = clock()
    restore = clock.pinned
    vault, _recovery = Vault.create(os.path.join(folder, "vault.db"), passphrase=Secret(DEMO_PASSPHRASE), kdf=kdf,
                                    clock=clock)

    def set_clock(moment: float) -> None:
        clock.pinned = moment

    seed_demo_vault(vault, set_clock, now)
    clock.pinned = restore
    vault.lock()
    return vault


def seed_demo_vault(vault: Vault, set_clock: Callable[[float], None], now: float, seed: int = 7) -> int:
    """Fill an unlocked vault; ``set_clock`` moves the vault's clock to back-date entries."""
    fake = _FakeBytes(seed)
    credentials = Credentials(vault)
    for name, service, kind, context, rotation, age, tags in _CATALOGUE:
        set_clock(now - age * DAY)
        credentials.add(name, Secret(_fake_value(fake, service, kind)), kind=kind, service=service,
                        context=context, tags=list(tags), rotation_days=rotation,
                        url=f"https://{service}.example" if service in ("github", "gitlab") else "",
                        notes="Demo credential: the value is fake.")
    for name, service, context in _TOTP:
        set_clock(now - fake.between(20, 300) * DAY)
        credentials.add(name, Secret(_fake_totp_seed(fake)), kind=Kind.TOTP, service=service, context=context,
                        tags=["2fa"])
    set_clock(now - 2 * DAY)
    credentials.rotate("github-pat-ci", Secret(_fake_value(fake, "github", Kind.ACCESS_TOKEN)), overlap_seconds=4 * 86400)
    set_clock(now - 3 * 3600)
    credentials.set_status("stripe-live", Status.EXPOSED, reason="seen in ci.log (demo)")
    set_clock(now - 20 * DAY)
    credentials.set_status("heroku-legacy", Status.REVOKED, reason="service shut down (demo)")
    for minutes_ago, name in ((95, "openai-api"), (40, "github-pat-ci"), (12, "postgres-staging"), (3, "github-pat-ci")):
        set_clock(now - minutes_ago * 60)
        credentials.reveal(name, purpose="demo")
    set_clock(now)
    return len(_CATALOGUE) + len(_TOTP)
