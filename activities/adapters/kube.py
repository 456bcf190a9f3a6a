"""A small async Kubernetes REST client over one shared httpx connection pool.

Why not the `kubernetes` package's client: it is synchronous (a thread per call and per watch),
while activities and the watcher are asyncio code that must stream watches with heartbeats. The
`kubernetes` package still loads credentials (kubeconfig or in-cluster), so every auth method it
supports works here too. Only this module speaks HTTP to the API server.
"""

from __future__ import annotations

import collections
import json
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from activities import telemetry
from activities.errors import (
    AlreadyExists,
    BadInput,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KultaError,
    NotFound,
    Unauthorized,
    Unavailable,
)
from activities.naming import api_path

JsonObject = dict[str, Any]
PatchType = Literal["merge", "strategic", "json", "apply"]
_CONTENT_TYPES: dict[PatchType, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


@dataclass(frozen=True)
class KubeCredentials:
    server: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    verify: bool = True
    # Where the token lives, re-read whenever the file changes (a projected ServiceAccount
    # token is rotated by the kubelet; a kubeconfig's `tokenFile`).
    token_file: str | None = None
    # The `kubernetes` package's refresh hook for exec plugins and OIDC (cloud tokens that last
    # minutes): returns the current token, running the plugin again once it expired.
    refresh: Callable[[], str | None] | None = field(default=None, compare=False)


IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def load_credentials(kubeconfig: str | None = None, context: str | None = None) -> KubeCredentials:
    """Credentials from in-cluster config when running in a Pod, else from kubeconfig."""
    from kubernetes import config as kconfig
    from kubernetes.client import Configuration

    cfg = Configuration()
    token_file: str | None = None
    try:
        if kubeconfig is None:
            kconfig.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            token_file = IN_CLUSTER_TOKEN
        else:
            raise kconfig.ConfigException("kubeconfig given")
    except kconfig.ConfigException:
        kconfig.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=cfg
        )
        token_file = _kubeconfig_token_file(kubeconfig, context)
    hook = cfg.refresh_api_key_hook

    def refreshed() -> str | None:
        if hook is not None:
            hook(cfg)
        return _bearer(cfg)

    return KubeCredentials(
        server=cfg.host,
        ca_file=cfg.ssl_ca_cert,
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
        token=_bearer(cfg),
        verify=bool(cfg.verify_ssl),
        token_file=token_file,
        refresh=refreshed if hook is not None and token_file is None else None,
    )


def _bearer(cfg: Any) -> str | None:
    auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    return auth.split(" ", 1)[-1].strip() if auth else None


def _kubeconfig_token_file(kubeconfig: str | None, context: str | None) -> str | None:
    """The `tokenFile` of the kubeconfig's user, if it names one (read by path, relative to the
    kubeconfig); the `kubernetes` package reads it once and never again."""
    import yaml

    path = Path(kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config").expanduser()
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    wanted = context or config.get("current-context")
    ctx: dict[str, Any] = next(
        (c for c in config.get("contexts") or [] if c.get("name") == wanted), {}
    )
    user_name = (ctx.get("context") or {}).get("user")
    user: dict[str, Any] = next(
        (u for u in config.get("users") or [] if u.get("name") == user_name), {}
    )
    token_file = (user.get("user") or {}).get("tokenFile")
    return str(path.parent / token_file) if token_file else None


class BearerToken(httpx.Auth):
    """The current token on every request: the token file re-read when it changed (a stat per
    request), or the refresh hook asked at most every `REFRESH_SECONDS`; a 401 re-reads or
    refreshes at once and sends the request once more."""

    REFRESH_SECONDS = 10.0

    def __init__(self, credentials: KubeCredentials) -> None:
        self._credentials = credentials
        self._token = credentials.token
        self._file_version: tuple[int, int] | None = None
        self._asked_at = time.monotonic()
        if credentials.token_file:
            self._read_file()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._renew(force=False)
        self._sign(request)
        response = yield request
        if response.status_code == 401 and self._renew(force=True):
            self._sign(request)
            yield request

    def _sign(self, request: httpx.Request) -> None:
        if self._token:
            request.headers["Authorization"] = f"Bearer {self._token}"

    def _renew(self, *, force: bool) -> bool:
        """Brings the token up to date; True if it changed."""
        before = self._token
        if self._credentials.token_file:
            self._read_file(force=force)
        elif self._credentials.refresh is not None:
            now = time.monotonic()
            if force or now - self._asked_at >= self.REFRESH_SECONDS:
                self._asked_at = now
                self._token = self._credentials.refresh() or self._token
        return self._token != before

    def _read_file(self, *, force: bool = False) -> None:
        path = self._credentials.token_file
        assert path is not None
        try:
            stat = os.stat(path)
            version = (stat.st_mtime_ns, stat.st_ino)
            if force or version != self._file_version:
                self._token = Path(path).read_text().strip() or self._token
                self._file_version = version
        except OSError:
            pass  # a file being replaced: the token read last is still the best there is


# The one path builder, re-exported for adapters' callers.
resource_path = api_path


@dataclass(frozen=True)
class WatchEvent:
    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]
    object: JsonObject


class KubeClient:
    """JSON-in, JSON-out access to the API server with errors mapped to `activities.errors`."""

    def __init__(
        self,
        credentials: KubeCredentials,
        *,
        timeout: float = 30.0,
        max_connections: int = 16,
        max_watches: int = 250,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.credentials = credentials
        # Requests this client made, by verb (WATCH for each watch opened): what benchmarks
        # count; the process-wide total is the kulta_kube_requests_total metric.
        self.requests: collections.Counter[str] = collections.Counter()
        verify: ssl.SSLContext | bool = credentials.verify
        if credentials.verify:
            ctx = ssl.create_default_context(cafile=credentials.ca_file)
            if credentials.cert_file and credentials.key_file:
                ctx.load_cert_chain(credentials.cert_file, credentials.key_file)
            verify = ctx
        all_headers = {"Accept": "application/json", "User-Agent": "kulta/0.1"}
        all_headers.update(headers or {})
        auth = BearerToken(credentials)

        # Two pools: a watch holds its connection for minutes, a request for milliseconds. Shared,
        # hundreds of waiting watches would need a pool that large, and httpcore checks every
        # pooled connection on every request (a fifth of the worker's CPU at 1,000 rollouts).
        # HTTP/1.1 on purpose: HTTP/2 (one multiplexed connection per pool) cut the worker's CPU
        # by 13% at 200 rollouts, but kube-apiserver ends an HTTP/2 connection (GOAWAY) right
        # after a 401 and httpcore then drops the 401 itself: a rejected token would look like a
        # network error, and the refresh-on-401 below would never run.
        def pool(size: int) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                base_url=credentials.server,
                verify=verify,
                headers=all_headers,
                auth=auth,
                timeout=httpx.Timeout(timeout),
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
            )

        self._http = pool(max_connections)
        self._watches = pool(max_watches)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._watches.aclose()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> JsonObject:
        return await self._request("GET", path, params=params)

    async def version(self) -> JsonObject:
        """The API server's version: a cheap request that proves it answers (readiness)."""
        return await self.get("/version")

    async def create(self, path: str, body: JsonObject, *, dry_run: bool = False) -> JsonObject:
        """POSTs `body`; with `dry_run` the server validates it fully and stores nothing."""
        params = {"dryRun": "All"} if dry_run else None
        return await self._request("POST", path, json_body=body, params=params)

    async def replace(self, path: str, body: JsonObject) -> JsonObject:
        return await self._request("PUT", path, json_body=body)

    async def patch(
        self,
        path: str,
        body: JsonObject | list[JsonObject],
        patch_type: PatchType = "merge",
        params: Mapping[str, str] | None = None,
    ) -> JsonObject:
        return await self._request(
            "PATCH",
            path,
            content=json.dumps(body).encode(),
            headers={"Content-Type": _CONTENT_TYPES[patch_type]},
            params=params,
        )

    async def delete(self, path: str, body: JsonObject | None = None) -> JsonObject:
        return await self._request("DELETE", path, json_body=body)

    async def watch(
        self,
        path: str,
        *,
        resource_version: str | None,
        params: Mapping[str, str] | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[WatchEvent]:
        """Streams watch events until the server closes the watch.

        Raises:
            Gone: the resource version is too old (410); relist and watch again.
        """
        query = {
            "watch": "1",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
            **(params or {}),
        }
        if resource_version:
            query["resourceVersion"] = resource_version
        read_timeout = httpx.Timeout(30.0, read=timeout_seconds + 30.0)
        self._count("WATCH")
        try:
            async with self._watches.stream(
                "GET", path, params=query, timeout=read_timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error_for(response)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        if status.get("code") == 410:
                            raise Gone(status.get("message", "watch expired"))
                        raise Unavailable(f"watch error: {status.get('message', status)}")
                    yield WatchEvent(type=event["type"], object=event["object"])
        except httpx.TransportError as err:
            raise Unavailable(f"watch {path}: {err!r}") from err

    def _count(self, verb: str) -> None:
        self.requests[verb] += 1
        telemetry.KUBE_REQUESTS.labels(verb).inc()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: JsonObject | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> JsonObject:
        self._count(method)
        try:
            response = await self._http.request(
                method, path, json=json_body, content=content, headers=headers, params=params
            )
        except httpx.TransportError as err:
            raise Unavailable(f"{method} {path}: {err!r}") from err
        if response.status_code >= 400:
            raise _error_for(response)
        if not response.content:
            return {}
        result: JsonObject = response.json()
        return result


def _error_for(response: httpx.Response) -> KultaError:
    try:
        status = response.json()
        message = status.get("message") or response.text
        reason = status.get("reason", "")
    except ValueError:
        message, reason = response.text, ""
    where = f"{response.request.method} {response.request.url.path}"
    text = f"{where}: {response.status_code} {message}"
    code = response.status_code
    if code == 404:
        return NotFound(text)
    if code == 409:
        return AlreadyExists(text) if reason == "AlreadyExists" else Conflict(text)
    if code == 410:
        return Gone(text)
    if code == 401:
        return Unauthorized(text)
    if code == 403:
        return Forbidden(text)
    if code == 422:
        return Invalid(text)
    if code == 429 or code >= 500:
        return Unavailable(text)
    return BadInput(text)
