"""Provider rules in gitleaks' schema: every default rule, and the machinery around them.

Fake tokens are built from parts at run time (``mix`` below), so this file holds no
string that a secret scanner, ours included, would report.
"""

from __future__ import annotations

import re
import string
import sys
from pathlib import Path

import pytest

from aegis_tui.core.crypto import sha256
from aegis_tui.core.errors import UsageError
from aegis_tui.core.scan.findings import RULE
from aegis_tui.core.scan.rules import (
    Rule,
    RuleSet,
    default_rules,
    load_rules,
    shannon_entropy,
    translate_re2,
)

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
URL64 = ALNUM + "_-"
HEX = "0123456789abcdef"
DIGITS = string.digits
BASE32 = string.ascii_uppercase + "234567"


def mix(count: int, alphabet: str = ALNUM, offset: int = 0) -> str:
    """A deterministic, high-entropy run of ``count`` characters (stride 7 is coprime with
    every alphabet above, so it cycles through all of its characters)."""
    return "".join(alphabet[(offset + index * 7) % len(alphabet)] for index in range(count))


def pem(kind: str, label: str = "PRIVATE") -> str:
    body = mix(192, B64)
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    head = f"{kind} {label}".strip()
    return f"-----BEGIN {head} KEY-----\n{lines}\n-----END {head} KEY-----"


SLACK_IDS = f"{mix(10, DIGITS)}-{mix(12, DIGITS, 3)}"

# (rule id, text, should that rule report it)
CASES: list[tuple[str, str, bool]] = [
    ("aws-access-key-id", "id = AKIA" + mix(16, BASE32), True),
    ("aws-access-key-id", "id = ASIA" + mix(16, BASE32), True),
    ("aws-access-key-id", "id = AKIA" + mix(15, BASE32), False),
    ("aws-secret-access-key", f'aws_secret_access_key = "{mix(40, B64)}"', True),
    ("aws-secret-access-key", f'gcp_value = "{mix(40, B64)}"', False),
    ("aws-secret-access-key", f'aws_secret_access_key = "{"Ab1/" * 10}"', False),  # low entropy
    ("github-pat", "value = ghp_" + mix(36), True),
    ("github-pat", "value = ghp_" + mix(35), False),
    ("github-fine-grained-pat", f"value = github_pat_{mix(22)}_{mix(59, offset=5)}", True),
    ("github-fine-grained-pat", f"value = github_pat_{mix(22)}_{mix(58, offset=5)}", False),
    ("github-oauth-token", "value = gho_" + mix(36), True),
    ("github-oauth-token", "value = gho_" + mix(30), False),
    ("github-app-token", "value = ghs_" + mix(36), True),
    ("github-app-token", "value = ghu_" + mix(36), True),
    ("github-app-token", "value = ghx_" + mix(36), False),
    ("github-refresh-token", "value = ghr_" + mix(36), True),
    ("github-refresh-token", "value = ghr_" + mix(20), False),
    ("gitlab-pat", "value = glpat-" + mix(20, URL64), True),
    ("gitlab-pat", "value = glpat-" + mix(19, URL64), False),
    ("slack-bot-token", f"value = xoxb-{SLACK_IDS}-{mix(24)}", True),
    ("slack-bot-token", f"value = xoxb-123-{mix(12, DIGITS)}-{mix(24)}", False),
    ("slack-user-token", f"value = xoxp-{SLACK_IDS}-{mix(11, DIGITS, 5)}-{mix(32, HEX)}", True),
    ("slack-user-token", f"value = xoxp-{SLACK_IDS}-{mix(32, HEX)}", False),
    ("slack-app-token", f"value = xapp-1-A{mix(10, DIGITS)}-{mix(13, DIGITS)}-{mix(64, HEX)}", True),
    ("slack-app-token", f"value = xapp-1-A{mix(10, DIGITS)}-{mix(13, DIGITS)}-{mix(63, HEX)}", False),
    ("slack-webhook-url",
     f"url: https://hooks.slack.com/services/T{mix(9, BASE32)}/B{mix(9, BASE32, 4)}/{mix(24)}", True),
    ("slack-webhook-url",
     f"url: https://hooks.slack.com/workflows/T{mix(9, BASE32)}/B{mix(9, BASE32, 4)}/{mix(24)}", False),
    ("stripe-secret-key", "value = sk_live_" + mix(24), True),
    ("stripe-secret-key", "value = sk_test_" + mix(24), True),
    ("stripe-secret-key", "value = sk_live_" + mix(10), False),
    ("stripe-restricted-key", "value = rk_live_" + mix(24), True),
    ("stripe-restricted-key", "value = pk_live_" + mix(24), False),  # publishable, not secret
    ("openai-project-key", "value = sk-proj-" + mix(100, URL64), True),
    ("openai-project-key", "value = sk-proj-" + mix(20, URL64), False),
    ("openai-legacy-key", f"value = sk-{mix(20)}T3BlbkFJ{mix(20, offset=9)}", True),
    ("openai-legacy-key", "value = sk-" + mix(48), False),
    ("anthropic-api-key", f"value = sk-ant-api03-{mix(93, URL64)}AA", True),
    ("anthropic-api-key", f"value = sk-ant-api03-{mix(30, URL64)}AA", False),
    ("google-api-key", "value = AIza" + mix(35, URL64), True),
    ("google-api-key", "value = AIza" + mix(30, URL64), False),
    ("azure-storage-account-key",
     f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={mix(86, B64)}==;EndpointSuffix=core.windows.net",
     True),
    ("azure-storage-account-key", f"AccountName=acct;AccountKey={mix(40, B64)}==", False),
    ("azure-ad-client-secret", f'AZURE_CLIENT_SECRET="Ab18Q~{mix(34, ALNUM + "_~.-")}"', True),
    ("azure-ad-client-secret", f'AZURE_CLIENT_ID="{mix(36)}"', False),
    ("twilio-api-key", "value = SK" + mix(32, HEX), True),
    ("twilio-api-key", "value = SK" + mix(31, HEX), False),
    ("twilio-auth-token", "TWILIO_AUTH_TOKEN=" + mix(32, HEX), True),
    ("twilio-auth-token", "TWILIO_ACCOUNT_SID=AC" + mix(32, HEX), False),
    ("sendgrid-api-key", f"value = SG.{mix(22, URL64)}.{mix(43, URL64, 3)}", True),
    ("sendgrid-api-key", f"value = SG.{mix(22, URL64)}.{mix(20, URL64, 3)}", False),
    ("npm-access-token", "value = npm_" + mix(36), True),
    ("npm-access-token", "value = npm_" + mix(30), False),
    ("pypi-upload-token", "value = pypi-AgEIcHlwaS5vcmc" + mix(80, URL64), True),
    ("pypi-upload-token", "value = pypi-AgEIcHlwaS5vcmc" + mix(20, URL64), False),
    ("docker-hub-pat", "value = dckr_pat_" + mix(27, URL64), True),
    ("docker-hub-pat", "value = dckr_pat_" + mix(10, URL64), False),
    ("private-key", pem(""), True),
    ("private-key", pem("RSA"), True),
    ("private-key", pem("EC"), True),
    ("private-key", pem("OPENSSH"), True),
    ("private-key", pem("ENCRYPTED"), True),
    ("private-key", pem("", label="PUBLIC"), False),
    ("jwt", f"value = eyJ{mix(20, URL64)}.eyJ{mix(30, URL64, 2)}.{mix(43, URL64, 5)}", True),
    ("jwt", f"value = eyJ{mix(20, URL64)}.eyJ{mix(30, URL64, 2)}", False),
    ("database-url-password", f"url = postgres://app:{mix(16)}@db.internal:5432/app", True),
    ("database-url-password", f"url = postgresql://app:{mix(16)}@db.internal/app", True),
    ("database-url-password", f"url = mysql://root:{mix(16)}@localhost/app", True),
    ("database-url-password", f"url = mongodb+srv://app:{mix(16)}@cluster0.mongodb.net/app", True),
    ("database-url-password", f"url = redis://:{mix(16)}@cache:6379/0", True),
    ("database-url-password", f"url = amqp://app:{mix(16)}@broker:5672/", True),
    ("database-url-password", "url = postgres://app@db.internal:5432/app", False),
    ("database-url-password", "url = postgres://app:${DB_PASSWORD}@db.internal:5432/app", False),
    ("generic-secret-assignment", f'password = "{mix(20)}"', True),
    ("generic-secret-assignment", f"api_key: {mix(24)}", True),
    ("generic-secret-assignment", f"export SERVICE_TOKEN='{mix(24, URL64)}'", True),
    ("generic-secret-assignment", 'password = "changeme"', False),
    ("generic-secret-assignment", "token: ${TOKEN}", False),
    ("generic-secret-assignment", 'password = "aaaaaaaaaaaa"', False),  # low entropy
    ("generic-secret-assignment", "token = get_token(request)", False),
    ("generic-secret-assignment", "self._credentials: Sequence[Credential] = ()", False),
    ("generic-secret-assignment", 'secret_key = os.environ["SECRET_KEY"]', False),
    ("generic-secret-assignment", "api_key = settings.API_KEY_2", False),
    ("generic-secret-assignment", "if token == expected_value_12:", False),
    ("generic-secret-assignment", '"tests/test_secret.py::test_x_10",', False),
    ("generic-secret-assignment", "API_TOKEN=aegis://acme/dev/api-token-2", False),
    ("generic-secret-assignment", 'f"password={CANARY_1}\\n"', False),
    ("generic-secret-assignment", f"token_commit: {mix(40, HEX)}", False),  # the git sha of a token change
    ("generic-secret-assignment", f'password_hash = "{mix(30)}"', False),
    ("generic-secret-assignment", f"TOKEN_URL=https://login.example.com/{mix(20)}", False),
    ("generic-secret-assignment", f'"token_id": "{mix(24)}",', False),
    ("generic-secret-assignment", f"secret_id: {mix(30)}", True),  # a Vault AppRole secret id is a credential
    ("generic-secret-assignment", f"ACCESS_TOKEN={mix(30)}", True),
]


@pytest.fixture(scope="module")
def defaults() -> RuleSet:
    return default_rules()


@pytest.mark.parametrize(("rule_id", "text", "positive"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_default_rule_case(defaults: RuleSet, rule_id: str, text: str, positive: bool) -> None:
    found = [finding.rule_id for finding in defaults.scan(text, "config.txt")]
    if positive:
        assert found == [rule_id]  # exactly one finding: no generic duplicate either
    else:
        assert rule_id not in found


def test_every_default_rule_is_described_and_tested(defaults: RuleSet) -> None:
    ids = [rule.id for rule in defaults.rules]
    assert all(rule.id and rule.description for rule in defaults.rules)
    assert {rule_id for rule_id, _, positive in CASES if positive} == set(ids)
    assert {rule_id for rule_id, _, positive in CASES if not positive} == set(ids)


def test_a_token_in_a_named_assignment_is_one_provider_finding(defaults: RuleSet) -> None:
    findings = defaults.scan(f"GITHUB_TOKEN={'ghp_' + mix(36)}\n", ".env")
    assert [finding.rule_id for finding in findings] == ["github-pat"]


# --- secretGroup and entropy ----------------------------------------------------------

GROUPS_RULES = """
[[rules]]
id = "explicit"
description = "second group"
regex = '''user=(\\w+) pass=(\\w+)'''
secretGroup = 2

[[rules]]
id = "first-group"
description = "first group by default"
regex = '''login=(\\w+)'''

[[rules]]
id = "whole"
description = "no groups"
regex = '''KEY\\d{4}'''
"""


def test_secret_group_selects_the_reported_span() -> None:
    text = "user=alice pass=hunter2 login=bob KEY1234"
    spans = {f.rule_id: text[f.start:f.end] for f in load_rules(GROUPS_RULES).scan(text, "x")}
    assert spans == {"explicit": "hunter2", "first-group": "bob", "whole": "KEY1234"}


def test_secret_group_zero_is_the_whole_match() -> None:
    rules = load_rules("[[rules]]\nid='z'\nregex='''a(b)c'''\nsecretGroup=0\n")
    [finding] = rules.scan("xabcx", "x")
    assert (finding.start, finding.end) == (1, 4)


def test_secret_group_out_of_range_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="'bad'"):
        load_rules("[[rules]]\nid='bad'\nregex='''a(b)c'''\nsecretGroup=2\n")


def test_entropy_threshold_applies_to_the_secret() -> None:
    rules = load_rules("[[rules]]\nid='e'\nregex='''v=(\\w+)'''\nentropy=3.0\n")
    assert rules.scan("v=aaaaaaaaaaaa", "x") == []
    assert [f.rule_id for f in rules.scan(f"v={mix(16)}", "x")] == ["e"]


@pytest.mark.parametrize(("text", "bits"), [("", 0.0), ("aaaa", 0.0), ("ab", 1.0), ("aabb", 1.0), ("abcd", 2.0)])
def test_shannon_entropy(text: str, bits: float) -> None:
    assert shannon_entropy(text) == pytest.approx(bits)


# --- keyword prefilter ----------------------------------------------------------------

class SpyPattern:
    """A compiled regex that records every text it is asked to search."""

    def __init__(self, pattern: str) -> None:
        self.compiled = re.compile(pattern)
        self.pattern, self.flags, self.groups = pattern, self.compiled.flags, self.compiled.groups
        self.searched: list[str] = []

    def finditer(self, text: str, pos: int = 0, endpos: int = sys.maxsize):  # noqa: ANN201 - mirrors re.Pattern
        self.searched.append(text[pos:endpos])
        return self.compiled.finditer(text, pos, endpos)


def test_a_rule_with_keywords_never_runs_its_regex_without_them() -> None:
    spy = SpyPattern(r"foo\d+")
    rules = RuleSet((Rule(id="kw", description="", regex=spy, keywords=("bar",)),))  # type: ignore[arg-type]
    assert rules.scan("foo123 and nothing else", "x") == []
    assert spy.searched == []
    assert [f.rule_id for f in rules.scan("foo123 BAR", "x")] == ["kw"]  # keywords match any case
    assert spy.searched == ["foo123 BAR"]


def test_a_rule_without_keywords_always_runs() -> None:
    rules = load_rules("[[rules]]\nid='k'\nregex='''foo\\d+'''\n")
    assert [f.rule_id for f in rules.scan("foo123", "x")] == ["k"]


def test_the_path_regex_limits_where_a_rule_runs() -> None:
    rules = load_rules("[[rules]]\nid='p'\nregex='''foo\\d+'''\npath='''\\.env$'''\n")
    assert rules.scan("foo123", "app.py") == []
    assert [f.rule_id for f in rules.scan("foo123", "prod.env")] == ["p"]


def test_a_path_only_rule_reports_the_file() -> None:
    rules = load_rules("[[rules]]\nid='pkcs12'\ndescription='keystore'\npath='''\\.p12$'''\n")
    assert rules.scan("anything", "a.txt") == []
    [finding] = rules.scan("anything", "certs/server.p12")
    assert (finding.rule_id, finding.line, finding.column) == ("pkcs12", 1, 1)


# --- allowlists -----------------------------------------------------------------------

BASE_RULE = "[[rules]]\nid='r'\ndescription='d'\nregex='''KEY=(\\S+)'''\n"


def rule_ids(rules: RuleSet, text: str, path: str = "src/app.py") -> list[str]:
    return [finding.rule_id for finding in rules.scan(text, path)]


@pytest.mark.parametrize("allowlist", [
    "[allowlist]\nregexes=['''^ok''']",
    "[allowlist]\npaths=['''^src/''']",
    "[allowlist]\nstopwords=['OKAY']",  # stopwords compare case-insensitively
    "[allowlist]\nregexTarget='match'\nregexes=['''^KEY=ok''']",
    "[allowlist]\nregexTarget='line'\nregexes=['''^# fixture''']",
    "[[allowlists]]\nregexes=['''^ok''']",
])
def test_global_allowlist(allowlist: str) -> None:
    rules = load_rules(BASE_RULE + allowlist)
    assert rule_ids(rules, "# fixture KEY=okay-value") == []
    assert rule_ids(rules, "KEY=real-value", "lib/app.py") == ["r"]


@pytest.mark.parametrize("allowlist", [
    "[rules.allowlist]\nregexes=['''^ok''']",
    "[[rules.allowlists]]\nstopwords=['okay']",
    "[[rules.allowlists]]\npaths=['''^src/''']",
    "[[rules.allowlists]]\nregexTarget='line'\nregexes=['''fixture''']",
])
def test_rule_allowlist(allowlist: str) -> None:
    rules = load_rules(BASE_RULE + allowlist + "\n[[rules]]\nid='other'\nregex='''KEY=(\\S+)'''\n")
    assert rule_ids(rules, "# fixture KEY=okay-value") == ["other"]
    assert rule_ids(rules, "KEY=real-value", "lib/app.py") == ["r"]


def test_regex_target_secret_does_not_see_the_rest_of_the_match() -> None:
    rules = load_rules(BASE_RULE + "[allowlist]\nregexes=['''^KEY=''']")
    assert rule_ids(rules, "KEY=real-value") == ["r"]


def test_an_unknown_regex_target_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="regexTarget"):
        load_rules(BASE_RULE + "[allowlist]\nregexTarget='commit'")


@pytest.mark.parametrize("value", [
    "${API_KEY}", "$API_KEY", "{{api_key}}", "<your-key>", "xxxxxxxxxxxx", "****", "changeme",
    "my-example-key", "YOUR_KEY_HERE", "sk_live_...", "%(key)s", "placeholder-value", "{name}",
    "aegis://team/prod/db", "[aegis:DB_PASSWORD]",
])
def test_placeholders_are_allowed_by_the_default_global_allowlist(defaults: RuleSet, value: str) -> None:
    rules = defaults.merge(load_rules(BASE_RULE))
    assert "r" not in rule_ids(rules, f"KEY={value}")


def test_a_real_value_is_not_a_placeholder(defaults: RuleSet) -> None:
    assert "r" in rule_ids(defaults.merge(load_rules(BASE_RULE)), f"KEY={mix(12)}")


def test_inline_aegis_allow_suppresses_that_line_only(defaults: RuleSet) -> None:
    token = "ghp_" + mix(36)
    text = f"a = '{token}'  # aegis:allow\nb = '{token}'\n"
    [finding] = defaults.scan(text, "app.py")
    assert finding.line == 2


# --- loading, merging, errors ---------------------------------------------------------

def test_a_user_rules_file_merges_with_the_defaults(defaults: RuleSet, tmp_path: Path) -> None:
    user = tmp_path / "rules.toml"
    user.write_text(
        "[[rules]]\nid='acme-token'\ndescription='ACME internal token'\nregex='''\\b(acme_[a-z0-9]{16})\\b'''\n"
        "keywords=['acme_']\n"
        "[[rules]]\nid='github-pat'\ndescription='overridden'\nregex='''\\b(ghp_[A-Za-z0-9]{36})\\b'''\n",
        encoding="utf-8",
    )
    merged = defaults.merge(load_rules(user))
    ids = [rule.id for rule in merged.rules]
    assert ids.count("github-pat") == 1 and ids[0] == "acme-token"
    assert len(ids) == len(defaults.rules) + 1
    text = f"x = acme_{mix(16, HEX)}\ny = ghp_{mix(36)}\nz = npm_{mix(36)}\n"
    found = {(f.rule_id, f.description) for f in merged.scan(text, "a.py")}
    assert found == {("acme-token", "ACME internal token"), ("github-pat", "overridden"),
                     ("npm-access-token", "npm access token")}


def test_a_user_rule_wins_over_the_generic_rule(defaults: RuleSet) -> None:
    user = load_rules("[[rules]]\nid='acme-token'\nregex='''\\b(acme_[a-z0-9]{16})\\b'''\n")
    text = f"ACME_TOKEN=acme_{mix(16, HEX)}"
    assert [f.rule_id for f in defaults.scan(text, ".env")] == ["generic-secret-assignment"]
    assert [f.rule_id for f in defaults.merge(user).scan(text, ".env")] == ["acme-token"]


def test_an_invalid_regex_is_a_usage_error_naming_the_rule() -> None:
    with pytest.raises(UsageError, match="'broken-rule'.*invalid regex"):
        load_rules("[[rules]]\nid='broken-rule'\nregex='''(unclosed'''\n")


@pytest.mark.parametrize(("text", "message"), [
    ("[[rules]]\ndescription='no id'\nregex='a'\n", "rule number 1 has no id"),
    ("[[rules]]\nid='a'\nregex='a'\n[[rules]]\nid='a'\nregex='b'\n", "appears twice"),
    ("[[rules]]\nid='a'\n", "neither a regex nor a path"),
    ("[[rules]]\nid='a'\nregex='x'\nkeywords='x'\n", "list of strings"),
    ("[[rules]]\nid='a'\nregex='x'\nentropy='high'\n", "entropy must be a number"),
    ("[[rules\n", "not valid TOML"),
])
def test_malformed_rules_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_rules(text)


def test_a_missing_rules_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read rules file"):
        load_rules(tmp_path / "absent.toml")


def test_re2_spellings_are_translated() -> None:
    assert re.fullmatch(translate_re2("[[:alnum:]]+"), "aZ9")
    assert translate_re2(r"abc\z") == r"abc\Z"
    assert re.fullmatch(translate_re2("key(?i)VALUE"), "KEYvalue")
    rules = load_rules("[[rules]]\nid='go'\nregex='''token(?i)[[:xdigit:]]{4}\\z'''\n")
    assert [f.rule_id for f in rules.scan("token BEEF", "x")] == []
    assert [f.rule_id for f in rules.scan("tokenbeef", "x")] == ["go"]


# --- positions and fingerprints -------------------------------------------------------

def test_line_column_and_offsets_on_multi_line_input(defaults: RuleSet) -> None:
    token = "ghp_" + mix(36)
    prefix = "first line\nsecond: é\n"  # é is two bytes in UTF-8
    text = prefix + f"    token = {token}\n"
    [finding] = defaults.scan(text, "conf.yml")
    column = len("    token = ") + 1
    start = len(prefix.encode("utf-8")) + column - 1
    assert (finding.detector, finding.line, finding.column) == (RULE, 3, column)
    assert (finding.start, finding.end) == (start, start + len(token))
    assert text.encode("utf-8")[finding.start:finding.end].decode() == token
    assert finding.location() == f"conf.yml:3:{column}"


def test_a_multi_line_secret_starts_on_its_first_line(defaults: RuleSet) -> None:
    key = pem("RSA")
    [finding] = defaults.scan("header\n\n" + key + "\n", "id_rsa")
    assert (finding.line, finding.column, finding.start, finding.end) == (3, 1, 8, 8 + len(key))


def test_fingerprint_is_path_rule_and_a_truncated_sha256_of_the_secret(defaults: RuleSet) -> None:
    token = "npm_" + mix(36)
    [one] = defaults.scan(f"a = {token}", "pkg/.npmrc")
    [two] = defaults.scan(f"\n\n   b = {token}", "pkg/.npmrc")
    assert one.fingerprint == two.fingerprint  # position does not matter
    assert one.fingerprint == "pkg/.npmrc:npm-access-token:" + sha256(token.encode()).hex()[:16]
    assert token not in one.fingerprint
