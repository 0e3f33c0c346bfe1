"""The read-only download server: the reports root, GET/HEAD only, nothing outside it."""

import http.client
import os
from urllib.parse import quote

import pytest

from pipeline.fileserver import make_server, serve_in_background
from pipeline.resources.paths import download_url


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One server for the module: every test only reads through it (the refused methods check
    that the file is unchanged). Its shutdown waits out serve_forever's 0.5 s poll, once."""
    tmp_path = tmp_path_factory.mktemp("served")
    reports = tmp_path / "reports"
    (reports / "draft").mkdir(parents=True)
    (reports / "draft" / "附件2_返贫（重点扶持）人口统计表.xlsx").write_bytes(b"PK\x03\x04 annex")
    (reports / "quality").mkdir()
    (reports / "quality" / "index.html").write_text("<html>quality</html>", encoding="utf-8")
    (reports / "signed" / ".incoming-x").mkdir(parents=True)
    (reports / "signed" / ".incoming-x" / "a.xlsx").write_bytes(b"half")
    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", reports / "draft" / "link.txt")
    server = serve_in_background(reports, port=0)
    yield reports, server.server_port
    server.shutdown()
    server.server_close()


def request(port, method, path, host=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host or f"127.0.0.1:{port}")
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def test_a_download_link_serves_the_file(served):
    reports, port = served
    path = reports / "draft" / "附件2_返贫（重点扶持）人口统计表.xlsx"
    url = download_url(path, reports, f"http://127.0.0.1:{port}")
    assert url.startswith(f"http://127.0.0.1:{port}/draft/")
    assert download_url(reports, reports, f"http://127.0.0.1:{port}") == f"http://127.0.0.1:{port}/"
    response, body = request(port, "GET", url.split(str(port), 1)[1])
    assert response.status == 200 and body == b"PK\x03\x04 annex"
    assert response.getheader("Content-Type").startswith("application/vnd.openxmlformats")
    assert response.getheader("Content-Disposition").startswith("attachment")
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    head, body = request(port, "HEAD", url.split(str(port), 1)[1])
    assert head.status == 200 and body == b"" and head.getheader("Content-Length") == str(len(b"PK\x03\x04 annex"))


def test_the_quality_report_renders_in_the_browser(served):
    _, port = served
    response, body = request(port, "GET", "/quality/")
    assert response.status == 200 and b"quality" in body
    assert response.getheader("Content-Type").startswith("text/html")


def test_folders_are_listed_without_hidden_entries(served):
    _, port = served
    response, body = request(port, "GET", "/signed/")
    assert response.status == 200 and b".incoming" not in body
    redirect, _ = request(port, "GET", "/draft")
    assert redirect.status == 301 and redirect.getheader("Location") == "/draft/"


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/draft/../../secret.txt", "/%2e%2e/secret.txt", "/draft/%2E%2E/%2E%2E/secret.txt",
    "/draft/link.txt", "/signed/.incoming-x/a.xlsx", "/nothing.xlsx", "/draft/..%2f..%2fsecret.txt",
    "/draft%5c..%5c..%5csecret.txt", "/%00",
])
def test_nothing_outside_the_reports_root_or_hidden_is_served(served, path):
    _, port = served
    response, body = request(port, "GET", path)
    assert response.status == 404
    assert b"outside" not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_head_are_answered(served, method):
    reports, port = served
    response, _ = request(port, method, "/draft/" + quote("附件2_返贫（重点扶持）人口统计表.xlsx"))
    assert response.status == 405 and response.getheader("Allow") == "GET, HEAD"
    assert (reports / "draft" / "附件2_返贫（重点扶持）人口统计表.xlsx").read_bytes() == b"PK\x03\x04 annex"


def test_a_request_for_another_host_name_is_refused(served):
    _, port = served
    response, _ = request(port, "GET", "/quality/", host="evil.example:80")
    assert response.status == 403


def test_the_server_never_listens_beyond_this_machine(tmp_path):
    with pytest.raises(ValueError):
        make_server(tmp_path, host="0.0.0.0", port=0)
