"""download(): temp name, resume, checksum, clear errors — against a local HTTP server, never the internet."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from course_lib.data.download import download, file_hash

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB of known bytes
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class RangeHandler(BaseHTTPRequestHandler):
    """Serves PAYLOAD at /data.bin, honouring `Range: bytes=N-`; records the requests it saw."""

    seen: list = []

    def do_GET(self):  # noqa: N802 — http.server's naming
        type(self).seen.append((self.path, self.headers.get("Range")))
        if self.path != "/data.bin":
            self.send_error(404, "Not Found")
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            if start >= len(PAYLOAD):
                self.send_error(416)
                return
            self.send_response(206)
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    RangeHandler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_and_renames(server, tmp_path):
    dest = download(f"{server}/data.bin", tmp_path / "sub" / "data.bin", checksum=SHA256, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "data.bin.part").exists()


def test_existing_verified_file_is_not_fetched_again(server, tmp_path):
    (tmp_path / "data.bin").write_bytes(PAYLOAD)
    download(f"{server}/data.bin", tmp_path / "data.bin", checksum=SHA256, progress=False)
    assert RangeHandler.seen == []


def test_resume_continues_from_the_part_file(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:300_000])
    download(f"{server}/data.bin", tmp_path / "data.bin", checksum=SHA256, progress=False)
    assert RangeHandler.seen == [("/data.bin", "bytes=300000-")]
    assert file_hash(tmp_path / "data.bin") == SHA256


def test_checksum_mismatch_leaves_nothing_that_looks_valid(server, tmp_path):
    with pytest.raises(ValueError, match=r"sha256 of downloaded data.bin is [0-9a-f]{64}, expected 0{64}"):
        download(f"{server}/data.bin", tmp_path / "data.bin", checksum="0" * 64, progress=False)
    assert not (tmp_path / "data.bin").exists() and not (tmp_path / "data.bin.part").exists()


def test_corrupt_existing_file_is_replaced(server, tmp_path):
    (tmp_path / "data.bin").write_bytes(b"corrupt")
    download(f"{server}/data.bin", tmp_path / "data.bin", checksum=SHA256, progress=False)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_http_error_names_the_url(server, tmp_path):
    with pytest.raises(ConnectionError, match=r"downloading http://127\.0\.0\.1:\d+/missing\.bin failed: HTTP 404"):
        download(f"{server}/missing.bin", tmp_path / "missing.bin", progress=False)
    assert not (tmp_path / "missing.bin").exists()
