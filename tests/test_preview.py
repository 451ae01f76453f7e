"""Preview: the files it writes, the CLI command, and the server that re-renders on change."""

from __future__ import annotations

import http.client
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.app import gather
from pipeline.cli import main
from pipeline.clock import Clock
from pipeline.models import slug_of
from pipeline.preview import PreviewServer, render_previews
from pipeline.settings import DEFAULT_TEMPLATES, load_settings
from pipeline.sources.sample import SAMPLE_DAY, sample_client
from tests.conftest import SUBSCRIBERS, PapersServer, no_sleep

ADA = slug_of("ada@example.org")  # preview file names: the readable address and a hash

DAY = SAMPLE_DAY.isoformat()


def fetch(url: str) -> tuple[int, str]:
    """GET ``url`` from the local server: status and body."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def touch_later(path: Path) -> None:
    """Move ``path``'s modification time forward, so a change shows even on a coarse clock."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


@pytest.fixture
def workspace(env: Path, papers_server: PapersServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Editable copies of the templates and subscribers; the sample day on a local server."""
    shutil.copytree(DEFAULT_TEMPLATES, env / "templates")
    shutil.copytree(SUBSCRIBERS, env / "subscribers")
    monkeypatch.setenv("PAPERMAIL_TEMPLATES", str(env / "templates"))
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(env / "subscribers"))
    return env


def test_preview_writes_html_text_and_an_index_of_every_subscriber(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`papermail preview` writes each subscriber's two parts and an index with paper counts."""
    assert main(["preview", "--date", DAY, "--out", "pv"], sleep=no_sleep) == 0
    out = capsys.readouterr().out
    index = (workspace / "pv" / "index.html").read_text(encoding="utf-8")
    for slug in map(slug_of, ("ada@example.org", "grace@example.org", "alan@example.org")):
        assert (
            (workspace / "pv" / f"{slug}.html")
            .read_text(encoding="utf-8")
            .startswith("<!doctype html>")
        )
        assert (
            (workspace / "pv" / f"{slug}.txt")
            .read_text(encoding="utf-8")
            .startswith("papermail · Thursday, 1 January 2026")
        )
        assert f'href="{slug}.html"' in index
        assert f'href="{slug}.txt"' in index
    assert '<td class="n">5</td>' in index
    assert "paused" in index
    assert f"pv/{ADA}.html  5 papers  ada@example.org" in out


@pytest.fixture
def served(workspace: Path) -> Iterator[PreviewServer]:
    """The sample day's previews rendered and served on a free 127.0.0.1 port."""
    settings = load_settings()
    out = workspace / "pv"
    with sample_client() as client:
        day = gather(settings, SAMPLE_DAY, client=client, clock=Clock.waiting_with(no_sleep))
    render_previews(settings, day=day, out=out)
    server = PreviewServer.for_settings(settings, day=day, out=out, only=None, port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_server_renders_again_when_a_template_changes(
    served: PreviewServer, workspace: Path
) -> None:
    """Edit the template, fetch the page again over HTTP: the edit is there."""
    status, index = fetch(served.url)
    assert status == 200
    assert "ada@example.org" in index
    status, before = fetch(served.url + f"{ADA}.html")
    assert status == 200
    assert ">arXiv<" in before
    assert "In short:" not in before

    template = workspace / "templates" / "digest.mjml.j2"
    template.write_text(
        template.read_text(encoding="utf-8").replace(">arXiv<", ">In short:<"), encoding="utf-8"
    )
    touch_later(template)
    status, after = fetch(served.url + f"{ADA}.html")
    assert status == 200
    assert "In short:" in after
    assert ">arXiv<" not in after


def test_the_server_renders_again_when_a_subscriber_file_changes(
    served: PreviewServer, workspace: Path
) -> None:
    """Lower max_papers in Ada's file: the index and her email show fewer papers."""
    ada = workspace / "subscribers" / "ada.yaml"
    ada.write_text(
        ada.read_text(encoding="utf-8").replace("max_papers: 5", "max_papers: 2"),
        encoding="utf-8",
    )
    touch_later(ada)
    _, index = fetch(served.url + "index.html")
    assert '<td class="n">2</td>' in index
    _, text = fetch(served.url + f"{ADA}.txt")
    assert "2 papers picked for Ada Lovelace" in text


def test_a_broken_template_shows_an_error_page_until_it_is_fixed(
    served: PreviewServer, workspace: Path
) -> None:
    """The server keeps running: a 500 page names file and line, the fix brings the page back."""
    template = workspace / "templates" / "digest.txt.j2"
    good = template.read_text(encoding="utf-8")
    template.write_text(good.replace("{% endfor %}", "{% endfor", 1), encoding="utf-8")
    touch_later(template)
    status, page = fetch(served.url + f"{ADA}.html")
    assert status == 500
    assert "digest.txt.j2:" in page
    template.write_text(good, encoding="utf-8")
    touch_later(template)
    status, page = fetch(served.url + f"{ADA}.html")
    assert status == 200
    assert "Grokking" in page


def raw_get(server: PreviewServer, path: str, host: str) -> int:
    """Send one GET with a raw path and Host header (no client-side cleaning); the status."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_foreign_host_header_is_refused(served: PreviewServer) -> None:
    """DNS rebinding: a page of evil.example resolving to 127.0.0.1 must not read the previews."""
    assert raw_get(served, "/index.html", f"127.0.0.1:{served.port}") == 200
    assert raw_get(served, "/index.html", f"localhost:{served.port}") == 200
    assert raw_get(served, "/index.html", f"evil.example:{served.port}") == 400
    assert raw_get(served, "/index.html", "") == 400


def test_a_nul_in_the_path_is_a_400_not_a_traceback(
    served: PreviewServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """An encoded NUL cannot name a file: a clean 400, and the server goes on serving."""
    host = f"127.0.0.1:{served.port}"
    assert raw_get(served, "/index%00.html", host) == 400
    assert raw_get(served, "/index.html", host) == 200
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("port", ["99999", "-1", "65536", "eighty"])
def test_a_port_out_of_range_is_a_usage_error(
    env: Path, capsys: pytest.CaptureFixture[str], port: str
) -> None:
    """99999 was an OverflowError (exit 1) and -1 was ignored: argparse refuses both (exit 2)."""
    with pytest.raises(SystemExit) as stop:
        main(["preview", "--serve", "--port", port])
    assert stop.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_a_port_in_use_is_one_line_and_exit_2(
    served: PreviewServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second server on a port already taken says so, naming the port (it was exit 1)."""
    argv = ["preview", "--date", DAY, "--out", "pv2", "--serve", "--port", str(served.port)]
    assert main(argv, sleep=no_sleep) == 2
    err = capsys.readouterr().err
    assert f"cannot serve on 127.0.0.1:{served.port}" in err
    assert "choose another --port" in err


@pytest.mark.parametrize("where", ["afile", "afile/sub", "/proc/forbidden"])
def test_an_out_folder_that_cannot_be_written_is_one_line_and_exit_2(
    workspace: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """--out at an existing file or where no folder can be made: a usage error naming the path
    (it was FileExistsError or FileNotFoundError, exit 1), before anything is gathered."""
    (workspace / "afile").write_text("x", encoding="utf-8")
    assert main(["preview", "--date", DAY, "--out", where], sleep=no_sleep) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"papermail: error: --out {where}: cannot create or write it")
    assert err.count("\n") == 1
