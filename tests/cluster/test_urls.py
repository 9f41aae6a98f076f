"""kwsint-run and kwsint-eval on inputs named by URL (file://, read through fsspec by the process or by each
worker): the outputs of the same files given as paths, but for their names, with and without --scheduler."""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import json
import os
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from kwsint import default_model
from kwsint.cli import eval as eval_cli
from kwsint.cli import run

distributed = pytest.importorskip("distributed")
pytest.importorskip("fsspec")

SAMPLES = default_model.path("samples")
M4 = default_model.path("M4.kwsq")
SPLIT = ["--piece-seconds", "1.3"]  # pieces of 130 frames: every sample stream in several pieces


@pytest.fixture(scope="module")
def address(local_cluster):
    """Workers, not the driver, open the URLs of a --scheduler run."""
    return local_cluster[0]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    """A 1-minute .npy of the samples end to end (detections in several pieces) and a .wav, as paths."""
    d = tmp_path_factory.mktemp("inputs")
    names = ["negative_1", "positive_1", "positive_2", "positive_3"]
    np.save(d / "long.npy", np.concatenate([np.load(SAMPLES / f"{n}.npy") for n in names]))
    return [str(d / "long.npy"), str(SAMPLES / "positive_1.wav")]


def _url(path: str) -> str:
    return f"file://{path}"


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    status = run.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("where", ["here", "cluster"])
def test_kwsint_run_on_urls_prints_what_it_prints_on_paths(where, address, inputs, tmp_path, capsys):
    scheduler = ["--scheduler", address, *SPLIT] if where == "cluster" else []
    base = [str(M4), "--no-progress", *scheduler]
    status, out, err = _run([*base, *inputs, "--posteriors", str(tmp_path / "paths.csv")], capsys)
    assert status == 0 and json.loads(out.splitlines()[-1])["detections"] >= 2
    named = (tmp_path / "paths.csv").read_text()
    for path in inputs:  # the streams are named by their URLs; nothing else differs
        out, named = out.replace(json.dumps(path), json.dumps(_url(path))), named.replace(path, _url(path))
    assert _run([*base, *map(_url, inputs), "--posteriors", str(tmp_path / "urls.csv")], capsys) == (status, out, err)
    assert (tmp_path / "urls.csv").read_text() == named


@pytest.mark.parametrize("where", ["here", "cluster"])
def test_a_url_that_cannot_be_read_is_one_line(where, address, capsys):
    scheduler = ["--scheduler", address] if where == "cluster" else []
    url = "file:///nonexistent/kwsint/x.npy"
    status, out, err = _run([str(M4), url, "--no-progress", *scheduler], capsys)
    assert status == 1
    assert f"{url}: file: expected a readable file, got " in out + err
    assert "Traceback" not in out + err and (out + err).count(url) == 1


@pytest.mark.parametrize("where", ["here", "cluster"])
def test_kwsint_eval_on_urls_reports_what_it_reports_on_paths(where, address, inputs, tmp_path, capsys):
    manifest = json.loads((SAMPLES / "manifest.json").read_text())
    for s in manifest["streams"]:
        s["features"] = str(SAMPLES / s["features"])
    manifest["streams"].append({"features": inputs[0], "kind": "negative"})
    scheduler = ["--scheduler", address, *SPLIT] if where == "cluster" else []
    argv = ["--manifest", str(tmp_path / "m.json"), "--models", str(M4), "default:M2", "--no-progress",
            "--bootstrap", "20", *scheduler]
    for name in ("paths", "urls"):  # one manifest file, which the report names
        (tmp_path / "m.json").write_text(json.dumps(manifest))
        assert eval_cli.main([*argv, "--out", str(tmp_path / name)]) == 0
        for s in manifest["streams"]:
            s["features"] = _url(s["features"])
    capsys.readouterr()
    for report in ("report.json", "report.md"):
        assert (tmp_path / "urls" / report).read_bytes() == (tmp_path / "paths" / report).read_bytes()


@pytest.mark.parametrize("where", ["here", "cluster"])
def test_a_manifest_url_that_cannot_be_read_is_one_line(where, address, tmp_path, capsys):
    url = "file:///nonexistent/kwsint/x.npy"
    (tmp_path / "m.json").write_text(json.dumps({"streams": [{"features": url, "kind": "positive",
                                                              "spans": [[1, 2]]}]}))
    scheduler = ["--scheduler", address] if where == "cluster" else []
    status = eval_cli.main(["--manifest", str(tmp_path / "m.json"), "--models", str(M4), "--out",
                            str(tmp_path / "r"), "--no-progress", *scheduler])
    err = capsys.readouterr().err
    assert status == 1 and f"streams[0]: features {url}: file: expected a readable file, got " in err
    assert err.count("\n") == 1


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP range requests (fsspec reads a .npy's rows and a .wav's header by ranges), as any
    real file server does; http.server's own handler ignores them."""

    def send_head(self):
        spec = self.headers.get("Range")
        path = self.translate_path(self.path)
        if not spec or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        first, _, last = spec.removeprefix("bytes=").partition("-")
        first, last = int(first), min(int(last) if last else size - 1, size - 1)
        with open(path, "rb") as f:
            f.seek(first)
            data = f.read(last - first + 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(data)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _served(folder: str) -> Iterator[str]:
    """``folder`` served over HTTP on this machine, with range requests: the base URL."""
    pytest.importorskip("aiohttp")  # fsspec's http backend
    handler = functools.partial(_RangeHandler, directory=folder)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


def test_inputs_served_over_http_are_read_by_the_workers(address, inputs, capsys):
    """A real HTTP server with range requests (fsspec's http backend, aiohttp): the workers fetch the pieces they
    score, and the output is the paths' but for the names."""
    with _served(os.path.dirname(inputs[0])) as base_url:
        url = f"{base_url}/long.npy"
        base = [str(M4), "--no-progress", "--scheduler", address, *SPLIT]
        status, out, err = _run([*base, inputs[0]], capsys)
        assert _run([*base, url], capsys) == (status, out.replace(json.dumps(inputs[0]), json.dumps(url)), err)


def test_a_changed_file_at_a_url_is_scored_again(tmp_path):
    """kwsint-eval --resume finds a URL's score again only while its server says the same of the file (size,
    Last-Modified or ETag; fsspec's info), as a path's only while its size and mtime stay. A URL the driver
    cannot reach is known by the URL alone."""
    import fsspec

    from kwsint.evaluation.resume import ScoreStore

    np.save(tmp_path / "a.npy", np.zeros((10, 20), np.float32))
    with _served(str(tmp_path)) as base_url:
        url = f"{base_url}/a.npy"
        key = ScoreStore.key("sha", 3, url)
        assert ScoreStore.key("sha", 3, url) == key
        np.save(tmp_path / "a.npy", np.zeros((11, 20), np.float32))
        assert ScoreStore.key("sha", 3, url) != key
    memory = f"memory://kwsint-resume-{os.getpid()}/a.npy"  # the same size, written again: its creation time
    try:
        fsspec.filesystem("memory").pipe(memory, b"x" * 100)
        key = ScoreStore.key("sha", 3, memory)
        time.sleep(0.01)
        fsspec.filesystem("memory").pipe(memory, b"y" * 100)
        assert ScoreStore.key("sha", 3, memory) != key
    finally:
        fsspec.filesystem("memory").rm(memory)
    unreachable = f"{base_url}/a.npy"  # the server is gone
    assert ScoreStore.key("sha", 3, unreachable) == ScoreStore.key("sha", 3, unreachable)
