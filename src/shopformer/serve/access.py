"""Who may call what: scoped API keys, per-key rate limits and the audit log of personal-data access.

A key file is either one line (the key, with every scope: the single-key form) or YAML:

    keys:
      - name: storefront             # shows in the audit log, never the key itself
        key: 2f6c0e...               # at least 16 characters
        scopes: [read]               # read, read-personal, write, admin
        rate_limit: 50               # requests per second (burst of the same size); omit for none
      - name: crm
        key: 9b1d44...
        scopes: [read-personal, write]

`read-personal` includes `read`, and `admin` includes every scope. With keys configured, every
endpoint but `/healthz` and `/metrics` (no personal data) needs a key holding its scope: 401 without a known key, 403 without the
scope, 429 with `Retry-After` past the key's rate. Without keys everything is open, which the CLI
allows on loopback addresses only.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from fastapi import Depends, Header, Request
from pydantic import Field, field_validator

from shopformer.config import FrozenConfig, parse_yaml
from shopformer.errors import ConfigError

__all__ = ["SCOPES", "requires", "AccessControl", "AccessDenied", "ApiKey", "AuditLog", "KeyFile", "RateLimited",
           "is_loopback", "read_key_file"]

Scope = Literal["read", "read-personal", "write", "admin"]
SCOPES: tuple[str, ...] = ("read", "read-personal", "write", "admin")
#: Scopes a held scope grants besides itself.
_IMPLIED = {"admin": set(SCOPES), "read-personal": {"read"}}


class ApiKey(FrozenConfig):
    """One named key, its scopes and its rate limit."""

    config_name: ClassVar[str] = "API key"

    name: str = Field(min_length=1, max_length=100)
    key: str = Field(min_length=16, description="the secret sent as X-API-Key")
    scopes: tuple[Scope, ...] = Field(min_length=1)
    rate_limit: float | None = Field(None, gt=0, description="requests per second, with a burst of the same size")

    def grants(self, scope: str) -> bool:
        return any(scope == held or scope in _IMPLIED.get(held, ()) for held in self.scopes)


class KeyFile(FrozenConfig):
    """Every key the service accepts; names and keys are unique."""

    config_name: ClassVar[str] = "key file"

    keys: tuple[ApiKey, ...] = Field(min_length=1)

    @field_validator("keys")
    @classmethod
    def _unique(cls, keys: tuple[ApiKey, ...]) -> tuple[ApiKey, ...]:
        for field in ("name", "key"):
            values = [getattr(k, field) for k in keys]
            if len(set(values)) < len(values):
                raise ValueError(f"two keys share a {field}")
        return keys


def read_key_file(path: str | Path) -> KeyFile:
    """The keys in `path`: a YAML `keys:` list, or one line holding a single key with every scope."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--api-key-file {path}: no such file")
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise ConfigError(f"--api-key-file {path}: the file is empty (expected a key on one line, or a `keys:` list)")
    if "\n" not in text and not text.startswith("keys:"):
        return KeyFile(keys=(ApiKey(name="default", key=text, scopes=("admin",)),))
    document = parse_yaml(text, str(path))
    if not isinstance(document, dict):
        raise ConfigError(f"--api-key-file {path}: expected a `keys:` list of name, key, scopes (and rate_limit)")
    return KeyFile.from_dict(document, where=f"--api-key-file {path}")


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AccessDenied(Exception):
    """401 (no known key) or 403 (the key lacks the scope)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


class RateLimited(Exception):
    """429: the key spent its rate; `retry_after` seconds until a request is allowed again."""

    def __init__(self, key: str, retry_after: int) -> None:
        super().__init__(f"key {key!r} is over its rate limit: retry in {retry_after} s")
        self.retry_after = retry_after


class _TokenBucket:
    """`rate` tokens per second, at most `rate` banked: a burst of one second's worth."""

    def __init__(self, rate: float, clock) -> None:
        self.rate, self.clock = rate, clock
        self.tokens, self.updated = max(rate, 1.0), clock()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        now = self.clock()
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class AuditLog:
    """Append-only JSON lines: one line per personal-data read, export or erasure, allowed or refused."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, *, key: str | None, action: str, endpoint: str, user_id: str | None, outcome: str) -> None:
        line = json.dumps({"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "key": key, "action": action,
                           "endpoint": endpoint, "user_id": user_id, "outcome": outcome})
        with self._lock, self.path.open("a", encoding="utf-8") as out:  # "a": never rewrites a line
            out.write(line + "\n")


class AccessControl:
    """Checks each request's key against the scope its endpoint needs, its rate, and audits personal data."""

    def __init__(self, keys: KeyFile | None = None, audit: AuditLog | None = None, clock=time.monotonic) -> None:
        self.keys, self.audit = keys, audit
        self._buckets = {k.name: _TokenBucket(k.rate_limit, clock) for k in (keys.keys if keys else ()) if k.rate_limit}

    @property
    def open(self) -> bool:
        """No keys configured: every request is allowed."""
        return self.keys is None

    def authorise(self, presented: str | None, scope: str) -> ApiKey | None:
        """The key allowed to act with `scope` (None when no keys are configured); raises otherwise."""
        if self.keys is None:
            return None
        key = self._find(presented)
        if key is None:
            raise AccessDenied(401, "missing_or_wrong_x-api-key_header", "missing or wrong X-API-Key header")
        if not key.grants(scope):
            raise AccessDenied(403, "missing_scope", f"key {key.name!r} does not have the {scope!r} scope")
        bucket = self._buckets.get(key.name)
        wait = bucket.take() if bucket else 0.0
        if wait:
            raise RateLimited(key.name, max(1, math.ceil(wait)))
        return key

    def _find(self, presented: str | None) -> ApiKey | None:
        if not presented:
            return None
        # Every key is compared, in constant time each, so timing does not tell which prefix matched.
        matches = [k for k in self.keys.keys if hmac.compare_digest(presented.encode(), k.key.encode())]
        return matches[0] if matches else None

    def record(self, key: ApiKey | None, action: str, endpoint: str, user_id: str | None, outcome: str) -> None:
        """An audit line for a personal-data access (no-op without an audit log)."""
        if self.audit is not None:
            self.audit.record(key=None if key is None else key.name, action=action, endpoint=endpoint,
                              user_id=user_id, outcome=outcome)


def requires(access: AccessControl, scope: str, audit: str | None = None, stored_id=lambda user_id: user_id):
    """A route dependency: the request's key must hold `scope`; `audit` names the personal-data action
    (read, export, erasure) written to the audit log, allowed or refused, under `stored_id(user_id)`."""

    async def check(
        request: Request, x_api_key: Annotated[str | None, Header(description="required when the service has API keys")] = None
    ) -> None:
        endpoint = f"{request.method} {getattr(request.scope.get('route'), 'path', request.url.path)}"
        user_id = request.path_params.get("user_id")
        user_id = None if user_id is None else stored_id(user_id)
        try:
            key = access.authorise(x_api_key, scope)
        except AccessDenied:
            if audit:
                access.record(None, audit, endpoint, user_id, "refused")
            raise
        if audit:
            access.record(key, audit, endpoint, user_id, "allowed")

    return [Depends(check)]
