"""LegacySurveyService: a careful HTTP client for the Legacy Surveys FITS cutout service.

``GET {base_url}?ra=..&dec=..&size=101&layer=ls-dr10&pixscale=0.262&bands=grz`` returns a FITS
(3, H, W) cube in nanomaggies. Each request attempt has one overall deadline (``timeout_s``:
connect, headers and body together; a watchdog cuts the connection when it passes, so a server
dripping bytes cannot hold a request past it; the socket timeout alone applies per read). The
client retries 429 (honouring
Retry-After), 5xx, connection errors, timeouts and invalid bodies with exponential backoff and
full jitter, bounds concurrency (a semaphore) and request rate (a shared token schedule), and
validates each body with :func:`dhs_gen.io.stamps.decode_stamp_npz` (FITS parses, shape, bands).
Failures raise :class:`~dhs_gen.survey.base.SurveyError` with a short reason (``http_404``,
``http_429``, ``http_5xx``, ``timeout``, ``connection_error``, ``html_error_page``,
``invalid_fits``, ``bad_shape``), the last one seen after retries.

The ``requests`` session is created lazily per thread and never pickled, so a configured client
can be shipped to Spark executors.
"""
from __future__ import annotations

import email.utils
import random
import socket
import threading
import time
from urllib.parse import urlencode

import numpy as np

from dhs_gen import BANDS, PIXEL_SCALE_ARCSEC
from dhs_gen.survey.base import Cutout, CutoutProvider, SurveyError

DEFAULT_BASE_URL = "https://www.legacysurvey.org/viewer/fits-cutout"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class _RateLimiter:
    """At most ``rate`` request starts per second across threads (0 = unlimited)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, sleep=time.sleep) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            sleep(start - now)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Deadline:
    """Cuts the connection a request is using when its deadline passes (a ``threading.Timer``)."""

    def __init__(self, holder: dict, seconds: float):
        self.holder, self.expired = holder, False
        self.timer = threading.Timer(seconds, self._cut)
        self.timer.daemon = True

    def _cut(self) -> None:
        self.expired = True
        # the socket noted when the request went out: http.client drops conn.sock once a
        # response that closes the connection starts, while the body is still being read from it
        sock = self.holder.get("sock") or getattr(self.holder.get("connection"), "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked read at once
            except OSError:
                pass

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        return False


def _session_recording_connections(holder: dict, user_agent: str):
    """A ``requests`` session (one per thread) whose HTTP(S) connections note themselves and
    their socket in ``holder`` when they send a request, so :class:`_Deadline` (which runs in a
    timer thread) can cut the one in use."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def recording(base):
        class Recorded(base):
            def request(self, *args, **kwargs):
                holder["connection"], holder["sock"] = self, None
                try:
                    return super().request(*args, **kwargs)
                finally:
                    holder["sock"] = self.sock
        return Recorded

    class Pool(HTTPConnectionPool):
        ConnectionCls = recording(HTTPConnection)

    class SPool(HTTPSConnectionPool):
        ConnectionCls = recording(HTTPSConnection)

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": SPool}

    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    for prefix in ("http://", "https://"):
        session.mount(prefix, Adapter())
    return session


class LegacySurveyService(CutoutProvider):
    """HTTP client for the Legacy Surveys cutout service (see module docstring)."""

    kind = "legacysurvey"

    def __init__(self, base_url: str = DEFAULT_BASE_URL, layer: str = "ls-dr10", pixscale: float = PIXEL_SCALE_ARCSEC,
                 bands: str = BANDS, timeout_s: float = 30.0, max_retries: int = 5, backoff_s: float = 1.0,
                 backoff_max_s: float = 60.0, retry_after_max_s: float = 120.0, max_concurrency: int = 4,
                 rate_limit_per_s: float = 2.0, user_agent: str = "dark-halo-scope", seed: int = 0):
        if max_retries < 0 or max_concurrency < 1:
            raise ValueError("max_retries must be >= 0 and max_concurrency >= 1")
        self.base_url = base_url
        self.layer = layer
        self.pixscale = pixscale
        self.bands = bands
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self.max_concurrency = max_concurrency
        self.rate_limit_per_s = rate_limit_per_s
        self.user_agent = user_agent
        self.seed = seed
        self.stats = {"requests": 0, "retries": 0}
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._local = threading.local()
        self._limiter = _RateLimiter(self.rate_limit_per_s)
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._rng = random.Random(self.seed)
        self._rng_lock = threading.Lock()
        self._stats_lock = threading.Lock()

    def __getstate__(self):
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("_local", "_limiter", "_slots", "_rng", "_rng_lock", "_stats_lock")}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_runtime()

    # ---------------------------------------------------------------- helpers
    def url(self, ra: float, dec: float, size: int = 101) -> str:
        """The request URL of a cutout."""
        query = urlencode({"ra": f"{float(ra):.8f}", "dec": f"{float(dec):.8f}", "size": int(size),
                           "layer": self.layer, "pixscale": self.pixscale, "bands": self.bands})
        return f"{self.base_url}?{query}"

    describe = url

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            self._local.holder = {}
            session = _session_recording_connections(self._local.holder, self.user_agent)
            self._local.session = session
        return session

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_max_s)
        cap = min(self.backoff_max_s, self.backoff_s * 2.0**attempt)
        with self._rng_lock:
            return self._rng.uniform(0.0, cap)

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _validate(self, body: bytes, content_type: str):
        from dhs_gen.io.stamps import StampDecodeError, decode_stamp_npz

        head = body[:512].lstrip().lower()
        if "html" in content_type.lower() or head.startswith((b"<!doctype", b"<html")):
            raise SurveyError("html_error_page", body[:120].decode("utf-8", "replace").strip())
        try:
            return decode_stamp_npz(body, bands=None, nan_policy="report", expected_size=None)
        except StampDecodeError as exc:
            raise SurveyError("invalid_fits", str(exc)) from None

    def _attempt(self, url: str, size: int):
        """One request; returns the decoded stamp or raises SurveyError(reason, retryable flag)."""
        import requests

        self._limiter.wait()
        self._count("requests")
        session = self._session()
        deadline = _Deadline(self._local.holder, self.timeout_s)
        try:
            with self._slots, deadline:
                resp = session.get(url, timeout=self.timeout_s)
                body = resp.content
        except requests.Timeout as exc:
            raise _Retryable("timeout", str(exc), None) from None
        except requests.RequestException as exc:
            if deadline.expired:
                raise _Retryable("timeout", f"no complete response within {self.timeout_s} s", None) from None
            raise _Retryable("connection_error", type(exc).__name__ + ": " + str(exc)[:200], None) from None
        if deadline.expired:  # cut mid-body: whatever arrived is not the whole response
            raise _Retryable("timeout", f"no complete response within {self.timeout_s} s", None)
        if resp.status_code in RETRY_STATUS:
            reason = "http_429" if resp.status_code == 429 else f"http_{resp.status_code}"
            raise _Retryable(reason, resp.reason or "", parse_retry_after(resp.headers.get("Retry-After")))
        if resp.status_code != 200:
            raise SurveyError(f"http_{resp.status_code}", resp.reason or "")
        expected = resp.headers.get("Content-Length")
        if expected is not None and expected.isdigit() and int(expected) != len(body):
            raise _Retryable("truncated_body", f"{len(body)} of {expected} bytes", None)
        try:
            stamp = self._validate(body, resp.headers.get("Content-Type", ""))
        except SurveyError as exc:
            raise _Retryable(exc.reason, exc.detail, None) from None
        if stamp.image.shape != (len(self.bands), size, size):
            raise SurveyError("bad_shape", f"expected {(len(self.bands), size, size)}, got {stamp.image.shape}")
        if stamp.bands != self.bands:
            raise SurveyError("bad_bands", f"expected {self.bands!r}, got {stamp.bands!r}")
        return stamp

    # ---------------------------------------------------------------- API
    def get_cutout(self, ra: float, dec: float, size: int = 101, galaxy_id: str | None = None) -> Cutout:
        """Fetch and validate one cutout, retrying transient failures; raises SurveyError."""
        url = self.url(ra, dec, size)
        last = None
        for attempt in range(self.max_retries + 1):
            try:
                stamp = self._attempt(url, size)
            except _Retryable as exc:
                last = exc
                if attempt == self.max_retries:
                    break
                self._count("retries")
                time.sleep(self._backoff(attempt, exc.retry_after))
                continue
            meta = dict(stamp.meta, provider=self.kind, request_url=url, attempts=attempt + 1)
            nan = np.full(len(self.bands), np.nan)
            return Cutout(image=stamp.image, bands=stamp.bands, psf_fwhm=nan, psfdepth=nan, meta=meta)
        raise SurveyError(last.reason, f"{last.detail} (after {self.max_retries + 1} attempts; {url})")

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None


class _Retryable(SurveyError):
    def __init__(self, reason: str, detail: str, retry_after: float | None):
        super().__init__(reason, detail)
        self.retry_after = retry_after
