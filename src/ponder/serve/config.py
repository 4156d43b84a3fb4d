"""What a server serves and within which limits: routes and caps, from flags or a TOML file.

    [server]                 # every key optional; these are the defaults
    host = "127.0.0.1"
    port = 8000
    max_budget = 64          # the largest N a request may ask for
    max_tokens = 2048        # the largest max_tokens a request may ask for
    max_body_bytes = 1048576
    max_concurrent = 8       # requests solved at once
    max_queued = 32          # requests waiting for a slot; one more gets 429
    deadline_s = 300         # a request still running after this gets 504

    [[route]]                # one per served model name; the first is the default
    name = "arith"
    model = "embedded"       # a model folder, an OpenAI-compatible URL, or "embedded"
    served_model = ""        # the upstream's model name (URL only; default: its first)
    timeout_s = 120          # a served upstream's time to answer one call (then retried)
    model_config = ""        # a served model's folder (config.json), for FLOPs estimates
    prompt_format = "auto"   # auto, chat, raw, or a folder or file with ponder_prompt.json
    verifier = "embedded"    # a folder, a URL, "embedded", or "" for none
    strategy = "compute_optimal"
    budget = 8
    params = { max_tokens = "256" }

The API key is never read from the file: give it with `--api-key` or $PONDER_API_KEY.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ponder.errors import ConfigError

EMBEDDED = "embedded"
ROUTE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")


@dataclass(frozen=True, slots=True)
class Route:
    """One served model name: its generator, its verifier and the strategy it uses by default.

    `model` and `verifier` are a model folder, an OpenAI-compatible URL, or "embedded"
    (ponder's arith policy and verifier); `verifier=None` serves without one (strategies
    that need one are then refused). `model_config` is a served model's folder, for its
    size (FLOPs); `prompt_format` how questions are put to it: "auto" (a folder's own
    format, else chat for a model with a chat template or a served one), "chat", "raw", or
    a folder or file holding a `ponder_prompt.json`. `timeout_s` is how long a served
    model has to answer one call (the `openai` client then retries it, three times, before
    the request gets 504). `policy` is the compute-optimal policy file for these models
    (the embedded models have theirs).
    """

    name: str = "arith"
    model: str = EMBEDDED
    served_model: str | None = None
    timeout_s: float = 120.0
    model_config: str | None = None
    prompt_format: str = "auto"
    verifier: str | None = EMBEDDED
    served_verifier: str | None = None
    strategy: str = "compute_optimal"
    budget: int = 8
    params: Mapping[str, str] = field(default_factory=dict)
    policy: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not set(self.name) <= ROUTE_NAME_CHARS:
            raise ConfigError(
                f"route name {self.name!r} must be letters, digits and - _ . / only "
                "('@' and ':' select a strategy and budget in a request's model name)"
            )
        if self.budget < 1:
            raise ConfigError(f"route {self.name}: the default budget must be >= 1")
        if self.timeout_s <= 0:
            raise ConfigError(f"route {self.name}: timeout_s must be positive")
        object.__setattr__(self, "params", {k: str(v) for k, v in self.params.items()})


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request may ask and how many run at once (see the module docstring)."""

    max_budget: int = 64
    max_tokens: int = 2048
    max_body_bytes: int = 1 << 20
    max_concurrent: int = 8
    max_queued: int = 32
    deadline_s: float = 300.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "max_queued" and value == 0:
                continue
            if value <= 0:
                raise ConfigError(f"{f.name} must be positive, got {value}")


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """The whole server: where it listens, its key, its limits and its routes."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    limits: Limits = field(default_factory=Limits)
    routes: tuple[Route, ...] = (Route(),)

    def __post_init__(self) -> None:
        if not self.routes:
            raise ConfigError("a server needs at least one route")
        names = [r.name for r in self.routes]
        if len(set(names)) != len(names):
            raise ConfigError(f"route names must differ: {names}")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"port {self.port} is not a port number")

    def check_exposure(self, allow_open: bool = False) -> None:
        """Refuse to listen beyond this machine without a key (unless told to)."""
        if self.api_key or allow_open or is_loopback(self.host):
            return
        raise ConfigError(
            f"listening on {self.host} would let anyone who can reach this machine use its "
            "models: give an --api-key (or $PONDER_API_KEY), or --allow-open-access to do it "
            "anyway"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config(path: str | Path) -> ServeConfig:
    """A server's config from a TOML file (the module docstring shows its keys)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no config file at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"server", "route"}
    if unknown:
        raise ConfigError(f"{path}: unknown sections {sorted(unknown)}; use [server] and [[route]]")
    server = dict(data.get("server", {}))
    if "api_key" in server:
        raise ConfigError(f"{path}: keep the API key out of files; use $PONDER_API_KEY")
    place = {k: server.pop(k) for k in ("host", "port") if k in server}
    limits = _make(Limits, server, f"{path} [server]")
    raw_routes = data.get("route", [])
    if not isinstance(raw_routes, list) or not raw_routes:
        raise ConfigError(f"{path}: give at least one [[route]]")
    routes = []
    for i, raw in enumerate(raw_routes):
        values = {k: (None if v == "" else v) for k, v in raw.items()}
        routes.append(_make(Route, values, f"{path} route {i + 1}"))
    return ServeConfig(limits=limits, routes=tuple(routes), **place)


def _make(cls: Any, values: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def with_overrides(config: ServeConfig, **changes: Any) -> ServeConfig:
    """`config` with the given top-level fields or limits replaced (None: keep)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    limit_names = {f.name for f in fields(Limits)}
    limits = {k: changes.pop(k) for k in list(changes) if k in limit_names}
    if limits:
        changes["limits"] = replace(config.limits, **limits)
    return replace(config, **changes)
