"""git's credential helper protocol: parsing git's request, formatting the answer, matching urls."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aegis_tui.core.errors import ConflictError, UsageError
from aegis_tui.core.gitcred import (
    MAX_REQUEST_BYTES,
    GitRequest,
    best_match,
    candidate_urls,
    format_response,
    parse_request,
    read_request,
    url_matches,
)

GITHUB = GitRequest("https", "github.com", "acme/api.git", "")


# -- parse_request ---------------------------------------------------------------------------
def test_the_parts_git_sends_are_read() -> None:
    text = "protocol=https\nhost=github.com\npath=acme/api.git\nusername=alice\n\n"
    assert parse_request(text) == GitRequest("https", "github.com", "acme/api.git", "alice")


def test_path_and_username_may_be_absent() -> None:
    assert parse_request("protocol=https\nhost=github.com\n") == GitRequest("https", "github.com", "", "")


def test_host_keeps_its_port() -> None:
    assert parse_request("protocol=http\nhost=127.0.0.1:8123\n").host == "127.0.0.1:8123"


def test_protocol_and_host_are_lowercased_but_path_and_username_are_not() -> None:
    request = parse_request("protocol=HTTPS\nhost=GitHub.COM\npath=Acme/API.git\nusername=Alice\n")
    assert request == GitRequest("https", "github.com", "Acme/API.git", "Alice")


def test_unknown_keys_and_the_password_are_ignored() -> None:
    text = ("protocol=https\nhost=github.com\nwwwauth[]=Basic realm=\"x\"\nwwwauth[]=Bearer\n"
            "capability[]=authtype\npassword=hunter2\npassword_expiry_utc=1\n")
    assert parse_request(text) == GitRequest("https", "github.com", "", "")


def test_a_url_line_stands_for_its_parts() -> None:
    request = parse_request("url=https://alice:pw@github.com:8443/acme/api.git\n")
    assert request == GitRequest("https", "github.com:8443", "acme/api.git", "alice")


def test_a_url_line_is_percent_decoded_like_git_does() -> None:
    request = parse_request("url=https://al%40ce@example.com/my%20repo.git\n")
    assert (request.username, request.path) == ("al@ce", "my repo.git")


def test_a_url_line_agreeing_with_explicit_parts_is_fine() -> None:
    text = "protocol=https\nhost=github.com\nurl=https://github.com/acme/api.git\n"
    assert parse_request(text) == GITHUB


def test_reading_stops_at_the_first_blank_line() -> None:
    assert parse_request("protocol=https\nhost=github.com\n\nnot a pair\n").host == "github.com"


def test_crlf_line_ends_are_tolerated() -> None:
    assert parse_request("protocol=https\r\nhost=github.com\r\n\r\n") == GitRequest("https", "github.com", "", "")


def test_a_repeated_key_with_the_same_value_is_fine() -> None:
    assert parse_request("protocol=https\nhost=a.example\nhost=a.example\n").host == "a.example"


def test_a_leading_slash_in_the_path_is_dropped() -> None:
    assert parse_request("protocol=https\nhost=h\npath=/acme/api.git\n").path == "acme/api.git"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("protocol=https\nhost=github.com\nnot a pair\n", "line 3 is not key=value"),
        ("=value\nprotocol=https\nhost=h\n", "line 1 is not key=value"),
        ("protocol=https\nhost=a.example\nhost=b.example\n", "gives host twice"),
        ("protocol=https\nurl=http://github.com\n", "gives protocol twice"),
        ("host=github.com\n", "names no protocol"),
        ("protocol=https\n", "names no host"),
        ("protocol=https\nhost=\n", "names no host"),
        ("url=cert:///etc/cert.pem\n", "names no host"),
        ("", "names no protocol"),
        ("url=github.com/acme\n", "line 1 has a url= that is not a URL"),
        ("url=https://[::1/x\n", "line 1 has a url= that is not a URL"),
        ("url=https://h/a%0Ab\n", "line 1 has a url= that decodes to a line break or NUL"),
        ("protocol=https\nhost=h\x00\n", "contains a NUL"),
    ],
)
def test_malformed_requests_are_refused_with_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_request(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_oversized_input_is_refused() -> None:
    with pytest.raises(UsageError, match="longer than"):
        parse_request("protocol=https\nhost=h\n" + "x=" + "y" * MAX_REQUEST_BYTES + "\n")


def test_oversized_input_counts_bytes_not_characters() -> None:
    with pytest.raises(UsageError, match="longer than"):
        parse_request("protocol=https\nhost=h\nx=" + "é" * (MAX_REQUEST_BYTES // 2) + "\n")


def test_errors_never_echo_the_password_or_the_bad_line() -> None:
    for text in ("protocol=https\nhost=h\npassword=s3cr3t-value\nhost=other\n", "s3cr3t-value\n",
                 "url=https://u:s3cr3t-value@[bad\n", "\xff\nx=s3cr3t-value\n", "s3cr3t-value"):
        with pytest.raises(UsageError) as caught:
            parse_request(text)
        assert "s3cr3t-value" not in str(caught.value)
        assert caught.value.__context__ is None or caught.value.__suppress_context__  # no chained ValueError


# -- read_request -------------------------------------------------------------------------------
def test_read_request_stops_at_the_blank_line_without_waiting_for_end_of_file() -> None:
    stream = io.BytesIO(b"protocol=https\nhost=github.com\n\nleft for someone else\n")
    assert read_request(stream) == GitRequest("https", "github.com", "", "")
    assert stream.read() == b"left for someone else\n"


def test_read_request_accepts_end_of_file_without_a_blank_line() -> None:
    assert read_request(io.BytesIO(b"protocol=https\nhost=github.com")).host == "github.com"


def test_read_request_never_reads_past_the_cap() -> None:
    stream = io.BytesIO(b"protocol=https\n" + b"x" * (2 * MAX_REQUEST_BYTES))
    with pytest.raises(UsageError, match="longer than"):
        read_request(stream)
    assert stream.tell() <= MAX_REQUEST_BYTES + 1


def test_read_request_refuses_bytes_that_are_not_utf8_without_quoting_them() -> None:
    with pytest.raises(UsageError, match="not UTF-8") as caught:
        read_request(io.BytesIO(b"protocol=https\nhost=h\npassword=pw\xff\xfe\n"))
    assert caught.value.__suppress_context__


# -- format_response ----------------------------------------------------------------------------
def test_the_response_is_key_value_lines() -> None:
    assert format_response("alice", "tok=en") == "username=alice\npassword=tok=en\n"


def test_an_empty_username_is_left_out_so_git_keeps_its_own() -> None:
    assert format_response("", "token") == "password=token\n"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x00b", "trailing\r"])
def test_values_the_protocol_cannot_carry_are_refused_without_echoing_them(bad: str) -> None:
    for username, password in ((bad, "ok"), ("ok", bad)):
        with pytest.raises(UsageError, match="line break or NUL") as caught:
            format_response(username, password)
        assert bad not in str(caught.value)


# -- candidate_urls -----------------------------------------------------------------------------
def test_candidates_go_from_the_repository_to_the_bare_host() -> None:
    assert candidate_urls(GITHUB) == [
        "https://github.com/acme/api.git",
        "https://github.com/acme/api",
        "https://github.com",
        "github.com",
    ]


def test_candidates_without_a_path_or_dot_git_have_no_duplicates() -> None:
    assert candidate_urls(GitRequest("http", "127.0.0.1:8123", "", "")) == ["http://127.0.0.1:8123", "127.0.0.1:8123"]
    assert candidate_urls(GitRequest("https", "h", "repo", "")) == ["https://h/repo", "https://h", "h"]


# -- url_matches --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "stored",
    [
        "https://github.com",
        "github.com",
        "GitHub.COM",
        "https://github.com/",
        "https://github.com/acme",
        "https://github.com/acme/",
        "https://github.com/acme/api.git",
        "https://github.com/acme/api",
        "github.com/acme/api.git/",
        "https://github.com:443/acme",
        "HTTPS://github.com",
        "  https://github.com  ",
    ],
)
def test_stored_urls_that_cover_the_request_match(stored: str) -> None:
    assert url_matches(stored, GITHUB) is not None


@pytest.mark.parametrize(
    "stored",
    [
        "http://github.com",  # another scheme
        "https://gitlab.com",
        "https://github.com.evil.example",
        "https://github.com:8443",  # a port the request does not have
        "https://github.com/acmeX",  # not on a segment boundary
        "https://github.com/acme/api-other",
        "https://github.com/acme/api.git/deeper",
        "https://github.com/Acme",  # paths are case-sensitive
        "",
        "https://",
        "https://github.com:notaport",
        "https://[::1",
    ],
)
def test_stored_urls_that_do_not_cover_the_request_do_not_match(stored: str) -> None:
    assert url_matches(stored, GITHUB) is None


def test_a_longer_path_prefix_scores_higher() -> None:
    scores = [url_matches(url, GITHUB) for url in
              ("github.com", "https://github.com", "github.com/acme", "https://github.com/acme",
               "https://github.com/acme/api.git")]
    assert all(score is not None for score in scores)
    assert scores == sorted(scores) and len(set(scores)) == len(scores)


def test_a_repository_specific_url_does_not_match_a_request_without_a_path() -> None:
    host_only = GITHUB._replace(path="")
    assert url_matches("https://github.com/acme", host_only) is None
    assert url_matches("https://github.com", host_only) is not None


def test_ports_must_agree_when_either_side_has_one() -> None:
    local = GitRequest("http", "127.0.0.1:8123", "repo.git", "")
    assert url_matches("http://127.0.0.1:8123/repo.git", local) is not None
    assert url_matches("127.0.0.1:8123", local) is not None
    assert url_matches("http://127.0.0.1/repo.git", local) is None
    assert url_matches("http://127.0.0.1:8124", local) is None
    assert url_matches("http://127.0.0.1:8123", local._replace(host="127.0.0.1")) is None


def test_default_ports_count_as_no_port() -> None:
    assert url_matches("https://github.com", GITHUB._replace(host="github.com:443")) is not None
    assert url_matches("github.com:443", GITHUB) is not None
    assert url_matches("http://example.com:80", GitRequest("http", "example.com", "", "")) is not None
    assert url_matches("example.com:443", GitRequest("http", "example.com", "", "")) is None


def test_ipv6_hosts_compare_by_address_and_port() -> None:
    request = GitRequest("http", "[::1]:8123", "", "")
    assert url_matches("http://[::1]:8123", request) is not None
    assert url_matches("http://[::1]:8124", request) is None


def test_a_stored_username_must_agree_with_the_one_git_sends() -> None:
    assert url_matches("https://alice@github.com", GITHUB._replace(username="alice")) is not None
    assert url_matches("https://alice@github.com", GITHUB._replace(username="bob")) is None
    assert url_matches("https://alice@github.com", GITHUB) is not None  # git has none yet: the answer supplies it


def test_a_request_host_that_is_not_a_host_matches_nothing() -> None:
    assert url_matches("github.com", GITHUB._replace(host="evil@github.com")) is None
    assert url_matches("github.com", GITHUB._replace(host="github.com/x")) is None


# -- best_match ---------------------------------------------------------------------------------
def test_best_match_picks_the_most_specific() -> None:
    credentials = [("host", "github.com"), ("org", "https://github.com/acme"), ("other", "gitlab.com"),
                   ("repo", "https://github.com/acme/api"), ("sibling", "https://github.com/acme/web")]
    assert best_match(credentials, GITHUB) == "repo"
    assert best_match(credentials, GITHUB._replace(path="acme/web.git")) == "sibling"
    assert best_match(credentials, GITHUB._replace(path="acme/ops.git")) == "org"
    assert best_match(credentials, GITHUB._replace(path="")) == "host"


def test_best_match_is_none_when_nothing_matches() -> None:
    assert best_match([("a", "gitlab.com")], GITHUB) is None
    assert best_match([], GITHUB) is None


def test_a_tie_for_best_is_a_conflict_naming_the_request() -> None:
    with pytest.raises(ConflictError) as caught:
        best_match([("a", "https://github.com/acme"), ("b", "https://github.com/acme/"), ("c", "github.com")], GITHUB)
    assert str(caught.value) == "several credentials match https://github.com/acme/api.git; narrow their url fields"


def test_a_tie_below_the_best_is_no_conflict() -> None:
    assert best_match([("a", "github.com"), ("b", "github.com"), ("c", "github.com/acme")], GITHUB) == "c"


# -- properties ---------------------------------------------------------------------------------
_PASSWORD = st.text(alphabet=st.characters(blacklist_characters="\n\r\x00", blacklist_categories=("Cs",)),
                    min_size=12, max_size=40)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400))
def test_parse_request_raises_nothing_but_usage_error(text: str) -> None:
    try:
        request = parse_request(text)
    except UsageError:
        return
    assert request.protocol and request.host


@settings(max_examples=300, deadline=None)
@given(before=st.text(max_size=200), after=st.text(max_size=200), password=_PASSWORD,
       in_url=st.booleans())
def test_error_messages_never_contain_the_password_sent(before: str, after: str, password: str,
                                                        in_url: bool) -> None:
    line = f"url=https://user:{password}@host/" if in_url else f"password={password}"
    try:
        parse_request(f"{before}\n{line}\n{after}")
    except UsageError as error:
        assert password not in str(error)
        assert error.__context__ is None or error.__suppress_context__


@settings(max_examples=200, deadline=None)
@given(stored=st.text(max_size=60), path=st.text(max_size=30))
def test_url_matches_never_raises(stored: str, path: str) -> None:
    score = url_matches(stored, GITHUB._replace(path=path))
    assert score is None or score >= 0
