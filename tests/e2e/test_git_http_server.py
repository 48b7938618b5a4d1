"""The git-over-HTTP test server, proved with real git and a throwaway credential helper.

The helper here is a test double written into ``tmp_path`` (not the product's
``git-credential-aegis``): it answers ``get`` with a fixed username/password and logs
each action, which shows git's real sequence: ``get`` then ``store`` when the server
accepts the credential, ``get`` then ``erase`` when it refuses it.

No git process can prompt (see ``tests/support/git_client.py``).
"""

from __future__ import annotations

import base64
import http.client
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aegis_tui.core.gitcred import GitRequest, parse_request
from tests.support.git_client import Git
from tests.support.git_http_server import GitHttpServer, make_bare_repo

USERNAME, TOKEN = "agent", "tok-right-7f3a91"
REPO = "demo.git"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHttpServer]:
    root = tmp_path / "served"
    root.mkdir()
    make_bare_repo(root, REPO)
    with GitHttpServer(root, USERNAME, TOKEN) as running:
        yield running


def test_a_push_with_the_right_token_succeeds_and_a_clone_sees_the_commit(server: GitHttpServer,
                                                                          tmp_path: Path) -> None:
    git = Git.with_logging_helper(tmp_path / "client", USERNAME, TOKEN)
    work, commit = git.commit_in_new_repo("work", {"README": b"hello\n"})
    git("push", "--quiet", server.url(REPO), "main", cwd=work)
    assert git.actions() == ["get", "store"]

    git("clone", "--quiet", server.url(REPO), "copy")
    assert git("rev-parse", "HEAD", cwd=git.folder / "copy").stdout.strip() == commit
    assert (git.folder / "copy" / "README").read_bytes() == b"hello\n"
    assert git.actions() == ["get", "store", "get", "store"]
    assert server.auth_failures == 0
    assert server.auth_successes >= 4 and server.challenges >= 2


def test_git_asks_the_helper_with_protocol_host_port_and_path(server: GitHttpServer, tmp_path: Path) -> None:
    git = Git.with_logging_helper(tmp_path / "client", USERNAME, TOKEN)
    git("ls-remote", server.url(REPO))
    assert parse_request(git.request("get")) == GitRequest("http", f"127.0.0.1:{server.port}", REPO, "")
    assert f"password={TOKEN}" in git.request("store")  # store carries the password: never echo it


def test_a_push_with_a_wrong_token_fails_and_git_erases_the_credential(server: GitHttpServer,
                                                                       tmp_path: Path) -> None:
    git = Git.with_logging_helper(tmp_path / "client", USERNAME, "tok-wrong")
    work, _ = git.commit_in_new_repo("work", {"README": b"hello\n"})
    result = git("push", server.url(REPO), "main", cwd=work, check=False)
    assert result.returncode == 128
    assert "Authentication failed" in result.stderr
    assert git.actions() == ["get", "erase"]
    assert server.auth_failures >= 1 and server.auth_successes == 0


def test_without_an_answer_git_fails_instead_of_prompting(server: GitHttpServer, tmp_path: Path) -> None:
    git = Git.with_logging_helper(tmp_path / "client", USERNAME, None)
    result = git("ls-remote", server.url(REPO), check=False)
    assert result.returncode == 128
    assert "terminal prompts disabled" in result.stderr
    assert git.actions() == ["get"]


def test_a_push_larger_than_the_post_buffer_arrives_chunked_and_intact(server: GitHttpServer,
                                                                      tmp_path: Path) -> None:
    git = Git.with_logging_helper(tmp_path / "client", USERNAME, TOKEN)
    blob = os.urandom(300_000)  # incompressible, so the pack outgrows the 64 KiB post buffer
    work, commit = git.commit_in_new_repo("work", {"blob.bin": blob})
    git("-c", "http.postBuffer=65536", "push", "--quiet", server.url(REPO), "main", cwd=work)
    git("clone", "--quiet", server.url(REPO), "copy")
    assert (git.folder / "copy" / "blob.bin").read_bytes() == blob
    assert git("rev-parse", "HEAD", cwd=git.folder / "copy").stdout.strip() == commit


def test_a_fetch_whose_negotiation_git_gzips_succeeds(server: GitHttpServer, tmp_path: Path) -> None:
    git = Git.with_logging_helper(tmp_path / "client", USERNAME, TOKEN)
    work, _ = git.commit_in_new_repo("work", {"README": b"hello\n"})
    git("push", "--quiet", server.url(REPO), "main", cwd=work)
    git("clone", "--quiet", server.url(REPO), "copy")
    copy = git.folder / "copy"
    for number in range(40):  # 40 local-only commits: "have" lines past git's 1 KiB gzip threshold
        git("commit", "--quiet", "--allow-empty", "-m", f"local {number}", cwd=copy)
    git("commit", "--quiet", "--allow-empty", "-m", "upstream", cwd=work)
    git("push", "--quiet", server.url(REPO), "main", cwd=work)
    git("fetch", "--quiet", "origin", cwd=copy)
    assert git("log", "--format=%s", "-1", "origin/main", cwd=copy).stdout.strip() == "upstream"


def _basic(username: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()}


def test_requests_without_the_token_get_an_empty_basic_challenge_on_a_reusable_connection(
        server: GitHttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        refs = f"/{REPO}/info/refs?service=git-upload-pack"
        for headers in ({}, _basic(USERNAME, "nope"), _basic("someone", TOKEN), {"Authorization": "Basic !!"}):
            connection.request("POST", f"/{REPO}/git-upload-pack", body=b"0000", headers=headers)
            response = connection.getresponse()
            assert (response.status, response.read()) == (401, b"")
            assert response.getheader("WWW-Authenticate") == 'Basic realm="aegis-test"'
            assert response.getheader("Content-Length") == "0"
        connection.request("GET", refs, headers=_basic(USERNAME, TOKEN))  # same connection: body was consumed
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/x-git-upload-pack-advertisement"
        assert b"# service=git-upload-pack" in response.read()
    finally:
        connection.close()
    assert (server.challenges, server.auth_failures, server.auth_successes) == (1, 3, 1)


def test_a_missing_repository_is_a_404_from_the_backend(server: GitHttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", "/missing.git/info/refs?service=git-upload-pack", headers=_basic(USERNAME, TOKEN))
        response = connection.getresponse()
        response.read()
        assert response.status == 404
    finally:
        connection.close()
