"""TOTP codes: RFC 6238 vectors, the seeds real services issue, and clear refusals."""

from __future__ import annotations

import pytest

from aegis_tui.core.errors import UsageError
from aegis_tui.core.secret import Secret
from aegis_tui.core.totp import totp_code, validate_totp

# RFC 6238 appendix B: the ASCII secret "12345678901234567890" in base32, 8 digits.
RFC_SEED = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


@pytest.mark.parametrize(("moment", "code"), [(59, "94287082"), (1111111109, "07081804"), (2000000000, "69279037")])
def test_codes_match_the_rfc_6238_sha1_vectors(moment: int, code: str) -> None:
    uri = f"otpauth://totp/ACME:me?secret={RFC_SEED}&digits=8&issuer=ACME"
    assert totp_code(Secret(uri), moment).code == code


def test_a_16_character_seed_as_github_issues_is_accepted() -> None:
    validate_totp(Secret("JBSWY3DPEHPK3PXP"))
    assert len(totp_code(Secret("jbsw y3dp ehpk 3pxp"), 1_700_000_000).code) == 6


def test_seconds_left_counts_down_within_the_period() -> None:
    assert totp_code(Secret(RFC_SEED), 60).seconds_left == 30
    assert totp_code(Secret(RFC_SEED), 89).seconds_left == 1
    uri = f"otpauth://totp/x?secret={RFC_SEED}&period=60"
    assert totp_code(Secret(uri), 61).seconds_left == 59


@pytest.mark.parametrize("value", [
    "JBSWY3DP",  # 40 bits: too short
    "not base32!",
    "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=1",
    "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=MD5",
    "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=4",
    "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=abc",
    "otpauth://totp/x",
])
def test_unusable_seeds_are_refused_with_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError):
        validate_totp(Secret(value))
