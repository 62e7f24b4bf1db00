"""LegacySurveyService against a local fault-injecting HTTP server on 127.0.0.1 (no internet)."""
from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
import pyarrow as pa
import pytest

from dhs_gen.survey import LegacySurveyService, MockDR10, SurveyError

MOCK = MockDR10(seed=1, star_density=0)


def fits_bytes(ra: float, dec: float, size: int) -> bytes:
    from astropy.io import fits

    image = MOCK.get_cutout(ra, dec, size).image
    hdu = fits.PrimaryHDU(image)
    for i, b in enumerate("grz"):
        hdu.header[f"BAND{i}"] = b
    buf = io.BytesIO()
    hdu.writeto(buf)
    return buf.getvalue()


class FaultServer:
    """Serves mock FITS cutouts; ``faults[ra]`` lists the fault of each successive attempt."""

    def __init__(self):
        self.faults: dict = {}
        self.attempts: dict = {}
        self.times: list = []
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.Lock()
        self.closed = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                q = parse_qs(urlparse(self.path).query)
                key = q["ra"][0]
                with server.lock:
                    n = server.attempts.get(key, 0)
                    server.attempts[key] = n + 1
                    server.times.append(time.monotonic())
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                try:
                    plan = server.faults.get(key, [])
                    fault = plan[n] if n < len(plan) else (plan[-1] if plan and plan[-1].endswith("!") else "ok")
                    status, headers, body = self.respond(fault.rstrip("!"), float(q["ra"][0]),
                                                         float(q["dec"][0]), int(q["size"][0]))
                finally:
                    with server.lock:  # counted until the response starts: never above the client's count
                        server.inflight -= 1
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if (server.faults.get(key) or [None])[0] == "drip":  # key: this request's ra (above)
                    for i in range(len(body)):
                        if server.closed.is_set():
                            return
                        try:
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                        except OSError:  # the client cut the connection
                            return
                        time.sleep(0.8)
                else:
                    self.wfile.write(body)
                self.close_connection = True

            def respond(self, fault, ra, dec, size):
                if fault in ("500", "503", "404"):
                    return int(fault), {}, b""
                if fault == "429":
                    return 429, {"Retry-After": "1"}, b""
                if fault == "html":
                    body = b"<!DOCTYPE html><html><body>Internal error: cutout unavailable</body></html>"
                    return 200, {"Content-Type": "text/html", "Content-Length": str(len(body))}, body
                if fault == "slow":
                    time.sleep(4.0)
                if fault == "drip":  # a whole, valid response, one byte every 0.8 s
                    return 200, {"Content-Type": "image/fits"}, fits_bytes(ra, dec, size)
                body = fits_bytes(ra, dec, size - 2 if fault == "wrong_size" else size)
                length = len(body)
                if fault == "truncated":  # a short but self-consistent body
                    body = body[: len(body) // 2]
                    length = len(body)
                if fault == "short_write":  # promises more bytes than it sends, then closes
                    body = body[:1000]
                return 200, {"Content-Type": "image/fits", "Content-Length": str(length)}, body

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/viewer/fits-cutout"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.closed.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    srv = FaultServer()
    yield srv
    srv.close()


def client(server, **kw):
    opts = dict(base_url=server.url, timeout_s=3.0, max_retries=3, backoff_s=0.01, backoff_max_s=0.05,
                max_concurrency=4, rate_limit_per_s=0)
    opts.update(kw)
    return LegacySurveyService(**opts)


def key(ra):
    return f"{ra:.8f}"


def fetch_all(svc, positions, size):
    """Many cutouts from 8 threads (more than the client's slots): a Cutout or the SurveyError of each."""
    from concurrent.futures import ThreadPoolExecutor

    def one(pos):
        try:
            return svc.get_cutout(pos[0], pos[1], size)
        except SurveyError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, positions))


def test_clean_fetch_is_validated_and_matches_the_served_pixels(server):
    c = client(server).get_cutout(150.0, 2.0, size=41)
    assert c.image.shape == (3, 41, 41) and c.image.dtype == np.float32 and c.bands == "grz"
    np.testing.assert_array_equal(c.image, MOCK.get_cutout(150.0, 2.0, 41).image)
    assert c.meta["request_url"].startswith(server.url) and "layer=ls-dr10" in c.meta["request_url"]
    assert "pixscale=0.262" in c.meta["request_url"] and "bands=grz" in c.meta["request_url"]


@pytest.mark.parametrize("fault", ["500", "503", "html", "truncated", "short_write", "slow"])
def test_transient_faults_are_retried(server, fault):
    server.faults[key(151.0)] = [fault]
    c = client(server).get_cutout(151.0, 2.0, size=41)
    assert c.meta["attempts"] == 2 and server.attempts[key(151.0)] == 2


def test_429_honours_retry_after(server):
    server.faults[key(152.0)] = ["429"]
    t0 = time.monotonic()
    c = client(server).get_cutout(152.0, 2.0, size=41)
    assert c.meta["attempts"] == 2
    gap = server.times[1] - server.times[0]
    assert gap >= 0.95 and time.monotonic() - t0 >= 0.95


@pytest.mark.parametrize("fault,reason,attempts", [("500!", "http_500", 4), ("html!", "html_error_page", 4),
                                                   ("404", "http_404", 1), ("wrong_size", "bad_shape", 1)])
def test_permanent_failures_give_clear_reasons(server, fault, reason, attempts):
    server.faults[key(153.0)] = [fault]
    with pytest.raises(SurveyError) as err:
        client(server).get_cutout(153.0, 2.0, size=41)
    assert err.value.reason == reason
    assert server.attempts[key(153.0)] == attempts


def test_connection_refused_is_a_reason_not_a_crash():
    svc = LegacySurveyService(base_url="http://127.0.0.1:9/none", timeout_s=0.2, max_retries=1, backoff_s=0.0,
                              rate_limit_per_s=0)
    with pytest.raises(SurveyError) as err:
        svc.get_cutout(1.0, 1.0)
    assert err.value.reason == "connection_error"


def test_many_mixed_faults_no_row_lost_and_concurrency_bounded(server):
    ras = [160.0 + i for i in range(12)]
    plans = [["500"], ["html"], ["truncated"], ["short_write"], ["500!"], ["404"], [], [], ["503", "html"], [], [], []]
    for ra, plan in zip(ras, plans):
        server.faults[key(ra)] = plan
    results = fetch_all(client(server, max_concurrency=2), [(ra, 1.0) for ra in ras], size=31)
    assert len(results) == len(ras)
    reasons = [r.reason if isinstance(r, SurveyError) else "ok" for r in results]
    assert reasons == ["ok"] * 4 + ["http_500", "http_404"] + ["ok"] * 6
    assert server.max_inflight <= 2


def test_rate_limit_spaces_requests(server):
    svc = client(server, rate_limit_per_s=10.0, max_concurrency=4)
    fetch_all(svc, [(170.0 + i, 0.0) for i in range(6)], size=21)
    starts = sorted(server.times)
    assert starts[-1] - starts[0] >= 0.45


def test_fetch_batch_over_the_service_accounts_for_every_row(server):
    from dhs_gen.survey.cutout_batch import fetch_batch

    server.faults[key(181.0)] = ["404"]
    server.faults[key(182.0)] = ["429"]
    batch = pa.RecordBatch.from_pydict({"galaxy_id": ["a", "b", "c"], "ra": [180.0, 181.0, 182.0],
                                        "dec": [0.5, 0.5, 0.5], "psfsize_r": [1.3, 1.3, 1.3]})
    cfg = {"kind": "legacysurvey", "legacysurvey": {"base_url": server.url, "timeout_s": 2.0, "backoff_s": 0.01,
                                                    "rate_limit_per_s": 0}}
    out = fetch_batch(batch, cfg, size=41, central_box=20)
    assert out.num_rows == 3
    assert out.column("status").to_pylist() == ["ok", "http_404", "ok"]
    assert out.column("provider").to_pylist() == ["legacysurvey"] * 3
    assert out.column("psfsize_r").to_pylist() == pytest.approx([1.3] * 3)   # from the manifest
    assert out.column("cutout")[1].as_py() is None and out.column("cutout_ok").to_pylist() == [True, False, True]


def test_client_pickles_without_live_sessions(server):
    import pickle

    svc = client(server)
    svc.get_cutout(190.0, 1.0, size=21)
    clone = pickle.loads(pickle.dumps(svc))
    assert clone.get_cutout(190.0, 1.0, size=21).image.shape == (3, 21, 21)


def test_a_dripping_server_cannot_hold_a_request_past_its_deadline(server):
    server.faults[key(190.0)] = ["drip"]
    svc = client(server, timeout_s=1.0, max_retries=1)
    t0 = time.monotonic()
    with pytest.raises(SurveyError) as err:
        svc.get_cutout(190.0, 0.5, size=31)
    elapsed = time.monotonic() - t0
    assert err.value.reason == "timeout" and server.attempts[key(190.0)] == 2
    assert elapsed < 4.0, elapsed  # two attempts of 1 s each (+ backoff); was > 25 s per attempt
