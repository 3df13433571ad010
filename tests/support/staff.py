"""A staff member's browser, as far as the REST API sees it: a cookie jar holding the
session cookie, and the CSRF token sent back with every write (docs/ACCOUNTS.md)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

PASSWORD = "correct horse battery staple"


class StaffBrowser:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        # unsafe: keep cookies of an IP address (the test server is 127.0.0.1)
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf: str | None = None
        self.last_headers: dict[str, str] = {}

    async def request(
        self, method: str, path: str, *, csrf: bool = True, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            headers["X-CSRF-Token"] = self.csrf
        async with self.http.request(
            method, self.base_url + path, headers=headers, **kwargs
        ) as response:
            self.last_headers = dict(response.headers)
            raw = await response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode(errors="replace")

    async def login(self, login: str, password: str = PASSWORD) -> tuple[int, Any]:
        status, body = await self.request(
            "POST", "/api/session", json={"login": login, "password": password}
        )
        if status == 201:
            self.csrf = body["csrf_token"]
        return status, body

    def cookie(self) -> str | None:
        for cookie in self.http.cookie_jar:
            if cookie.key == "tiaojie_session":
                return cookie.value
        return None

    async def close(self) -> None:
        await self.http.close()
