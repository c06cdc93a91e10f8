"""A small HTTP client for the Arkwright API (ARKWRIGHT_URL, ARKWRIGHT_TOKEN)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx

DEFAULT_URL = "http://127.0.0.1:8765"


class ApiError(RuntimeError):
    def __init__(self, status: int, detail: object) -> None:
        if isinstance(detail, list):
            text = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in detail)
        else:
            text = str(detail)
        super().__init__(f"HTTP {status}: {text}")
        self.status = status


@dataclass
class Client:
    url: str
    token: str | None
    timeout: float = 30.0

    @classmethod
    def from_env(cls) -> Client:
        return cls(
            os.environ.get("ARKWRIGHT_URL", DEFAULT_URL).rstrip("/"),
            os.environ.get("ARKWRIGHT_TOKEN"),
        )

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = httpx.request(
                method, self.url + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, detail)
        return response

    def submit(self, job: dict, idempotency_key: str | None = None) -> dict:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._request("POST", "/v1/jobs", json=job, headers=headers).json()

    def jobs(self, **params) -> dict:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._request("GET", "/v1/jobs", params=clean).json()

    def job(self, job_id: str) -> dict:
        return self._request("GET", f"/v1/jobs/{job_id}").json()

    def events(self, job_id: str) -> list[dict]:
        return self._request("GET", f"/v1/jobs/{job_id}/events").json()

    def cancel(self, job_id: str) -> dict:
        return self._request("POST", f"/v1/jobs/{job_id}/cancel").json()

    def logs(self, job_id: str, stream: str = "stdout", offset: int = 0) -> tuple[str, int, str]:
        response = self._request(
            "GET", f"/v1/jobs/{job_id}/logs", params={"stream": stream, "offset": offset}
        )
        return (
            response.text,
            int(response.headers.get("X-Log-Offset", offset)),
            response.headers.get("X-Job-State", ""),
        )

    def usage(self) -> dict:
        return self._request("GET", "/v1/usage").json()

    def create_token(self, user: str | None = None, ttl: str | None = None) -> dict:
        params = {k: v for k, v in (("user", user), ("ttl", ttl)) if v is not None}
        return self._request("POST", "/v1/tokens", params=params).json()

    def rotate_token(self, prefix: str, ttl: str | None = None) -> dict:
        params = {"ttl": ttl} if ttl is not None else {}
        return self._request("POST", f"/v1/tokens/{prefix}/rotate", params=params).json()

    def revoke_token(self, prefix: str) -> dict:
        return self._request("DELETE", f"/v1/tokens/{prefix}").json()
