"""Weight manager against a real HTTP server on 127.0.0.1: download, cache, corruption, offline, local files.

Expected checksums are computed independently with hashlib (and `git hash-object`'s documented blob format).
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from autopatch.backbones.weights import fetch_weights, file_digest, load_state_dict_file, resolve_weights
from autopatch.errors import AutopatchError


@pytest.fixture()
def payload(tmp_path: Path) -> bytes:
    """A tiny real checkpoint: a torch-saved state dict."""
    path = tmp_path / "fixture.pth"
    torch.save({"layer.weight": torch.arange(6.0).view(2, 3)}, path)
    return path.read_bytes()


@pytest.fixture()
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOPATCH_HOME", str(home))
    monkeypatch.delenv("AUTOPATCH_WEIGHTS_DIR", raising=False)
    return home


class _Server:
    """Serves `files[path]` bytes; counts requests so tests can tell a cache hit from a download."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                outer.requests += 1
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture()
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _gitsha1(data: bytes) -> str:
    return "gitsha1:" + hashlib.sha1(b"blob " + str(len(data)).encode() + b"\0" + data).hexdigest()


def test_git_blob_digest_matches_git_hash_object_of_known_content(tmp_path: Path) -> None:
    # `printf 'hello\n' | git hash-object --stdin` prints this id (git book, "Git Objects").
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    assert file_digest(path, "gitsha1") == "ce013625030ba8dba906f756967f9e9ca394464a"


@pytest.mark.parametrize("checksum_of", [_sha256, _gitsha1], ids=["sha256", "gitsha1"])
def test_good_download_is_cached_and_reused(server, payload, cache_home, checksum_of) -> None:
    server.files["/net.pth"] = payload
    path = fetch_weights(f"{server.url}/net.pth", "net.pth", checksum_of(payload))
    assert path == cache_home / "weights" / "net.pth"
    assert path.read_bytes() == payload
    assert torch.equal(load_state_dict_file(path)["layer.weight"], torch.arange(6.0).view(2, 3))
    again = fetch_weights(f"{server.url}/net.pth", "net.pth", checksum_of(payload))
    assert again == path and server.requests == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["net.pth"]  # no temp files left


def test_sha256_prefix_is_enough(server, payload, cache_home) -> None:
    server.files["/net-abc.pth"] = payload
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    assert fetch_weights(f"{server.url}/net-abc.pth", "net-abc.pth", f"sha256:{prefix}").is_file()


def test_corrupted_download_is_rejected_and_not_cached(server, payload, cache_home) -> None:
    corrupted = payload[:-10] + bytes(10)
    server.files["/net.pth"] = corrupted
    with pytest.raises(AutopatchError, match="corrupt") as info:
        fetch_weights(f"{server.url}/net.pth", "net.pth", _sha256(payload))
    assert "\n" not in str(info.value)
    folder = cache_home / "weights"
    assert not (folder / "net.pth").exists()
    assert list(folder.iterdir()) == []  # the temp file is gone too


def test_corrupted_cached_file_is_downloaded_again(server, payload, cache_home) -> None:
    target = cache_home / "weights" / "net.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated")
    server.files["/net.pth"] = payload
    assert fetch_weights(f"{server.url}/net.pth", "net.pth", _sha256(payload)).read_bytes() == payload


def test_offline_error_names_url_cache_path_and_checksum(cache_home) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ofa_net.pth"
    checksum = "gitsha1:55d835981d8acd1053657a951b18887a724ddcbf"
    with pytest.raises(AutopatchError) as info:
        fetch_weights(url, "ofa_net.pth", checksum)
    message = str(info.value)
    assert "\n" not in message
    assert url in message and str(cache_home / "weights" / "ofa_net.pth") in message and checksum in message


def test_http_error_is_reported_like_offline(server, cache_home) -> None:
    with pytest.raises(AutopatchError, match="404") as info:
        fetch_weights(f"{server.url}/missing.pth", "missing.pth", "sha256:deadbeef")
    assert f"{server.url}/missing.pth" in str(info.value)
    assert not (cache_home / "weights" / "missing.pth").exists()


def test_local_file_is_verified_and_used_in_place(tmp_path, payload, cache_home) -> None:
    local = tmp_path / "mine.pth"
    local.write_bytes(payload)
    assert fetch_weights("http://127.0.0.1:9/x.pth", "x.pth", _gitsha1(payload), local=local) == local
    assert not (cache_home / "weights").exists()  # nothing copied


def test_local_file_with_wrong_checksum_is_rejected(tmp_path, payload, cache_home) -> None:
    local = tmp_path / "mine.pth"
    local.write_bytes(payload)
    wrong = "sha256:" + "0" * 64
    with pytest.raises(AutopatchError, match="fails its checksum") as info:
        fetch_weights("http://127.0.0.1:9/x.pth", "x.pth", wrong, local=local)
    assert str(local) in str(info.value)


def test_missing_local_file_and_bad_checksum_spec_are_errors(tmp_path, cache_home) -> None:
    with pytest.raises(AutopatchError, match="does not exist"):
        fetch_weights("http://127.0.0.1:9/x.pth", "x.pth", "sha256:deadbeef", local=tmp_path / "nope.pth")
    with pytest.raises(AutopatchError, match="bad checksum"):
        fetch_weights("http://127.0.0.1:9/x.pth", "x.pth", "md5:abc")


def test_weights_dir_env_var_is_used_before_the_cache(tmp_path, payload, cache_home, monkeypatch) -> None:
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / "net.pth").write_bytes(payload)
    monkeypatch.setenv("AUTOPATCH_WEIGHTS_DIR", str(folder))
    path = resolve_weights("http://127.0.0.1:9/net.pth", "net.pth", _sha256(payload), weights=None)
    assert path == folder / "net.pth"
