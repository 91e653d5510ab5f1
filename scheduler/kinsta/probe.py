"""SiteProbe: GETs an environment's public pages to verify it after a change.

These are requests to the site itself, not to Kinsta's API, so they spend no rate budget. They ask
caches not to answer (a cached page would hide a broken update). With `via`, every request goes
to that base URL with the domain in the Host header: the sandbox serves its fake sites that way.
Each page comes with its size and how long it took (a connection opened on the way included).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from scheduler import __version__

MAX_BODY_CHARS = 200_000


@dataclass(frozen=True)
class Page:
    status: int | None  # None when no answer came
    body: str
    error: str | None = None
    size: int = 0  # the body's bytes (the body may be cut at MAX_BODY_CHARS)
    elapsed_s: float = 0.0  # from sending the request to the end of the answer


class SiteProbe:
    def __init__(self, timeout_s: float = 20.0, *, via: str | None = None) -> None:
        self._via = via.rstrip("/") if via else None
        self._client = httpx.Client(
            timeout=timeout_s,
            follow_redirects=True,
            headers={
                "User-Agent": f"kinsta-scheduler/{__version__} (verify)",
                "Cache-Control": "no-cache",
                "Pragma": "no-cache",
            },
        )

    def get(self, domain: str, path: str = "/") -> Page:
        path = path if path.startswith("/") else f"/{path}"
        if self._via is not None:
            url, headers = f"{self._via}{path}", {"Host": domain}
        else:
            url, headers = f"https://{domain}{path}", {}
        started = time.perf_counter()
        try:
            response = self._client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            elapsed_s = time.perf_counter() - started
            return Page(None, "", f"{type(exc).__name__}: {exc}", elapsed_s=elapsed_s)
        elapsed_s = time.perf_counter() - started
        body = response.text[:MAX_BODY_CHARS]
        return Page(response.status_code, body, None, len(response.content), elapsed_s)

    def close(self) -> None:
        self._client.close()
