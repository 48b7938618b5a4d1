"""``Secret`` keeps values out of reprs, formatting, tracebacks and pickles."""

from __future__ import annotations

import copy
import logging
import pickle
import traceback

import pytest

from aegis_tui.core.secret import Secret

CANARY = "s3cr3t-canary-VALUE-9f1e"


def test_reveal_returns_the_exact_bytes_and_text() -> None:
    secret = Secret(CANARY)
    assert secret.reveal() == CANARY.encode()
    assert secret.reveal_text() == CANARY
    assert len(secret) == len(CANARY)


def test_bytes_input_is_kept_verbatim_including_invalid_utf8() -> None:
    raw = b"\xff\x00\xfe binary"
    secret = Secret(raw)
    assert secret.reveal() == raw
    # surrogateescape: the text form round-trips to the same bytes
    assert secret.reveal_text().encode("utf-8", errors="surrogateescape") == raw


def test_str_input_is_encoded_as_utf8() -> None:
    assert Secret("pässwörd").reveal() == "pässwörd".encode()


@pytest.mark.parametrize("render", [repr, str, lambda s: f"{s}", lambda s: f"{s!r}", lambda s: f"{s:>40}",
                                    lambda s: "%s" % s, lambda s: "{}".format(s), lambda s: repr([s]),
                                    lambda s: repr({"k": s})])
def test_no_rendering_shows_the_value(render) -> None:
    text = render(Secret(CANARY))
    assert CANARY not in text
    assert "hidden" in text


def test_logging_a_secret_does_not_leak_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("aegis-test").info("value is %s", Secret(CANARY))
    assert caplog.records
    assert CANARY not in caplog.text


def test_traceback_with_captured_locals_does_not_show_the_value() -> None:
    def failing() -> None:
        value = Secret(CANARY)  # noqa: F841 - a local the traceback captures
        raise RuntimeError("boom")

    try:
        failing()
    except RuntimeError as err:
        rendered = "".join(traceback.TracebackException.from_exception(err, capture_locals=True).format())
    assert "value = Secret(<" in rendered
    assert CANARY not in rendered


def test_equality_compares_values() -> None:
    assert Secret("abc") == Secret(b"abc")
    assert Secret("abc") != Secret("abd")
    assert Secret("abc") != Secret("abcd")
    assert Secret("abc").__eq__("abc") is NotImplemented


def test_secret_is_not_hashable() -> None:
    with pytest.raises(TypeError):
        hash(Secret("x"))


def test_secret_cannot_be_pickled_or_deep_copied_by_pickle_protocol() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret(CANARY))
    with pytest.raises(TypeError):
        copy.deepcopy(Secret(CANARY))


def test_secret_has_no_instance_dict_to_leak_through() -> None:
    assert not hasattr(Secret("x"), "__dict__")
    with pytest.raises(AttributeError):
        Secret("x").extra = 1  # type: ignore[attr-defined]
