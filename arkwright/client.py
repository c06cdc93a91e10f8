"""A small HTTP client for the Arkwright API (ARKWRIGHT_URL, ARKWRIGHT_TOKEN)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

DEFAULT_URL = "http://127.0.0.1:8765"
PAGE = 1000  # the most jobs the API gives in one page
IDS_PER_CALL = 200  # job ids per list call: keeps each URL well under servers' limits


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
        """One page of jobs. Filters as the API names them (state, tenant, name, user,
        pool, id, mine, submitted_after/_before, ended_after/_before); a list or set
        is sent comma-separated, a datetime as ISO 8601, None is left out."""
        clean: dict[str, str | int | bool] = {}
        for key, value in params.items():
            if value is None:
                continue
            if isinstance(value, list | tuple | set | frozenset):
                value = ",".join(sorted(value) if isinstance(value, set | frozenset) else value)
            elif hasattr(value, "isoformat"):
                value = value.isoformat()
            clean[key] = value
        return self._request("GET", "/v1/jobs", params=clean).json()

    def iter_jobs(self, most: int, **filters) -> Iterator[dict]:
        """Every job the filters select, newest first, page by page, stopping after
        `most` (the caller says how many it is prepared to show). An `id` filter over
        IDS_PER_CALL ids is asked for in parts."""
        ids = filters.pop("id", None)
        id_groups = (
            [None]
            if not ids
            else [list(ids)[i : i + IDS_PER_CALL] for i in range(0, len(ids), IDS_PER_CALL)]
        )
        given = 0
        for group in id_groups:
            cursor = None
            while given < most:
                page = self.jobs(**filters, id=group, limit=min(PAGE, most - given), cursor=cursor)
                for job in page["items"]:
                    given += 1
                    yield job
                cursor = page.get("next_cursor")
                if not cursor:
                    break

    def job(self, job_id: str) -> dict:
        return self._request("GET", f"/v1/jobs/{job_id}").json()

    def get_job(self, job_id: str) -> dict:
        """One job's view (JobOut), or ApiError 404 if absent or not the caller's."""
        return self.job(job_id)

    def test_submission(self, body: dict) -> dict:
        """sbatch --test-only: the API validates the job and runs admission without
        storing it. Returns {"would_start_at": ISO 8601 time or None, "pool": str or
        None, "reason": str, "warnings": [str]}; ApiError 422 for a job that can never
        run or a bad field (named)."""
        return self._request("POST", "/v1/jobs/test", json=body).json()

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
