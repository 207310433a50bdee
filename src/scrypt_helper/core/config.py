"""One typed settings object, read from ``SCRYPT_HELPER_*`` variables and ``serve`` flags.

Every field is both an environment variable (``SCRYPT_HELPER_QUEUE_SIZE``) and a flag of
the same name (``--queue-size``); the flag wins. Defaults need no external service.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from scrypt_helper.abuse.identity import ApiKeys, IPNetwork, PrefixLengths, TrustedProxies, parse_networks
from scrypt_helper.abuse.rules import DEFAULT_RULES, Rule, parse_rules
from scrypt_helper.core.scheduler import WORKER_NICENESS
from scrypt_helper.engines.base import ScryptParams
from scrypt_helper.engines.registry import ENGINE_NAMES
from scrypt_helper.engines.vectors import PICL_SALT
from scrypt_helper.runtime.cpus import usable_cpus
from scrypt_helper_client import wire_params

ENV_PREFIX = "SCRYPT_HELPER_"
# Settings whose empty value means something (no rules, no origins, no reporting even with SENTRY_DSN);
# any other empty variable is unset.
EMPTY_IS_A_VALUE = frozenset({"rules", "cors_origins", "sentry_dsn"})
# What the limits library's Redis storage accepts (an ``async+`` prefix is allowed and implied).
REDIS_SCHEMES = ("redis", "rediss", "redis+unix")
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class AllowedParams(BaseModel):
    """One parameter set clients may ask for, in the wire names of the API."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    salt: str
    N: int = Field(alias="N")
    r: int
    p: int
    buflen: int

    def to_params(self) -> ScryptParams:
        """The engine's view of this set (salt as UTF-8 bytes)."""
        return ScryptParams(salt=self.salt.encode(), n=self.N, r=self.r, p=self.p, buflen=self.buflen)


AllowedParamsList = TypeAdapter(tuple[AllowedParams, ...])
DEFAULT_ALLOWED_PARAMS = (AllowedParams(salt=PICL_SALT.decode(), N=65536, r=8, p=1, buflen=32),)


def _unless_parsed(parse: Callable[[str], object], parsed: type) -> Callable[[object], object]:
    """A before-validator that parses a string (env var or flag) and passes parsed values through."""

    def validate(value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return value if isinstance(value, parsed) else parse(str(value))

    return validate


# Parsed once, when the settings are read; the node uses these typed values as they are.
Proxies = Annotated[
    TrustedProxies, NoDecode, BeforeValidator(_unless_parsed(TrustedProxies.parse, TrustedProxies))
]
Networks = Annotated[tuple[IPNetwork, ...], NoDecode, BeforeValidator(_unless_parsed(parse_networks, tuple))]
Keys = Annotated[ApiKeys, NoDecode, BeforeValidator(_unless_parsed(ApiKeys.parse, ApiKeys))]


def allowed_params_json(*sets: ScryptParams) -> str:
    """The ``--allowed-params`` value that allows exactly these sets."""
    return json.dumps([wire_params(params) for params in sets])


def default_workers() -> int:
    """One worker per CPU this process may use: its affinity mask, capped by its cgroup's quota."""
    return usable_cpus()


class EnvironmentSource(EnvSettingsSource):
    """``SCRYPT_HELPER_*`` variables, an empty one read as unset unless its setting may be empty."""

    def _load_env_vars(self) -> dict[str, str | None]:
        keep = {f"{ENV_PREFIX}{name}".lower() for name in EMPTY_IS_A_VALUE}
        return {
            name: value for name, value in super()._load_env_vars().items() if value or name.lower() in keep
        }


class Settings(BaseSettings):
    """The service's configuration; see the README's table for each setting."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        arbitrary_types_allowed=True,
    )

    # Derived once from the fields below, when the settings are read.
    _rule_set: tuple[Rule, ...] = PrivateAttr(())
    _scrypt_params: tuple[ScryptParams, ...] = PrivateAttr(())
    _prefix_lengths: PrefixLengths = PrivateAttr(PrefixLengths())

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8080, ge=0, le=65535, description="Port to listen on (0: any free port).")
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve /metrics on this separate port (same host) instead of the service port.",
    )
    workers: int = Field(
        default_factory=default_workers,
        ge=1,
        le=256,
        description="Hash worker threads of the whole node (default: the CPUs it may use).",
    )
    processes: int | None = Field(
        None,
        ge=1,
        le=256,
        description="HTTP front processes sharing the port, each with its own queue and an even share "
        "of the workers. Default: one per usable CPU, or 1 where node-wide limits need one process.",
    )
    queue_size: int | None = Field(
        None,
        ge=0,
        description="Most hashes waiting for a worker; beyond it requests get 503 at once. "
        "Default: what the workers finish within max-queue-wait, measured at start-up.",
    )
    max_queue_wait: float = Field(
        2.0, gt=0, description="Seconds a request may wait for a worker before it is answered 503."
    )
    worker_niceness: int = Field(
        WORKER_NICENESS,
        ge=0,
        le=19,
        description="CPU niceness of the hash workers, so that on cores they saturate the event loop "
        "still answers health checks and refusals at once (0: the same priority as the event loop).",
    )
    batch_window: float = Field(
        0.0,
        ge=0,
        le=0.05,
        description="Seconds a worker may hold a batch short of its lanes while more requests are "
        "known to be on their way (0: never hold one).",
    )
    engine: str = Field("auto", description="Engine name, or auto for the fastest that passes its self-test.")
    lock_memory: bool = Field(
        False,
        description="Lock the hash buffers in RAM (mlock) so they never reach swap; native engines only. "
        "Start-up stops when RLIMIT_MEMLOCK is below what the workers lock and CAP_IPC_LOCK is not held.",
    )
    allowed_params: Annotated[tuple[AllowedParams, ...], NoDecode] = Field(
        DEFAULT_ALLOWED_PARAMS,
        min_length=1,
        description='JSON list of {"salt", "N", "r", "p", "buflen"} objects clients may ask for.',
    )
    max_body_bytes: int = Field(4096, ge=64, le=1 << 20, description="Largest accepted request body.")
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        ("*",),
        description="Comma-separated origins whose pages may POST from browsers, with a JSON body "
        "(* for any page); a POST carrying another Origin gets 403.",
    )
    drain_seconds: float = Field(
        2.0,
        ge=0,
        description="On SIGTERM, keep serving this long with __lbheartbeat__ at 503 so that "
        "load balancers stop sending traffic, then stop accepting and finish queued work.",
    )
    shutdown_timeout: float = Field(
        30.0, gt=0, description="Most seconds to wait for in-flight requests after draining."
    )
    version_file: str = Field(
        "version.json", description="Dockerflow version.json served at /__version__ (if it exists)."
    )
    log_level: LogLevel = Field("INFO", description="Lowest level logged (MozLog JSON on stdout).")
    refusal_log_rate: int = Field(
        100,
        ge=0,
        description="Refusals (4xx, 503) given a request.summary line each, per second and front "
        "process; the rest are counted in one request.refusals line a second (0: a line for every one).",
    )
    sentry_dsn: SecretStr | None = Field(
        None,
        description="Report faults to this Sentry DSN, scrubbed of bodies, local variables and all but a "
        "few headers (SENTRY_DSN is read too); default: no reporting.",
    )
    trusted_proxies: Proxies = Field(
        TrustedProxies(),
        description="Proxies whose X-Forwarded-For is believed: a hop count, or comma-separated CIDRs "
        "(0: only the socket peer counts).",
    )
    ipv4_prefix: int = Field(
        24, ge=0, le=32, description="Leading bits of an IPv4 address that ip_prefix rules count together."
    )
    ipv6_prefix: int = Field(
        56, ge=0, le=128, description="Leading bits of an IPv6 address that ip_prefix rules count together."
    )
    rules: str | None = Field(
        None,
        description="Rate-limit rules (action : property : attempts : window : duration : policy), "
        "separated by newlines or ';'; empty for none. Default: the built-in single-node set.",
    )
    rules_file: Path | None = Field(None, description="Read the rate-limit rules from this file instead.")
    allowlist: Networks = Field((), description="Comma-separated CIDRs never rate limited.")
    denylist: Networks = Field((), description="Comma-separated CIDRs always refused (403).")
    api_keys: Keys = Field(
        ApiKeys({}),
        description="Comma-separated name:key pairs; clients sending X-API-Key are limited by api_key "
        "rules instead of the address's scrypt and request rules (address bans still apply).",
    )
    redis_url: SecretStr | None = Field(
        None,
        description="Share limit counters through this Redis (redis://host:port/db); default: in memory.",
    )
    redis_fail_closed: bool = Field(
        False, description="While Redis is unreachable, refuse requests (503) instead of using local limits."
    )
    redis_timeout: float = Field(0.25, gt=0, description="Seconds before a Redis operation counts as failed.")
    redis_sync_interval: float = Field(
        0.1,
        gt=0,
        le=10,
        description="Seconds between a process's trades of request counts, bans and blocks with Redis: "
        "within one, a client can get up to (processes in the cluster - 1) x a request rule's attempts "
        "beyond it; hash limits are exact",
    )
    # 50,000: a window of a fresh address costs about 0.5 KiB, a full table about 25 MiB. Eviction
    # takes the keys idle longest; clients near a limit are busy ones (docs/security.md).
    max_tracked_keys: int = Field(
        50_000,
        ge=1,
        description="Most rate-limit windows, and apart most ban/block markers, a node keeps in memory "
        "(its only limits, or its fall-back while Redis is down); beyond it the least recently used "
        "is forgotten.",
    )
    max_connections: int = Field(
        1024,
        ge=1,
        description="Most open connections a node serves; beyond it, every request but a health check "
        "gets 503 at once.",
    )
    # 32: a browser opens at most 6 connections to a host and the default rules allow one address
    # 30 hashes a minute, so even a NAT of busy clients stays below it; it takes 32 addresses to
    # fill the default max-connections.
    max_connections_per_client: int = Field(
        32,
        ge=1,
        description="Most connections one client address (an IPv6 /64) may hold; beyond it, 503 at once "
        "(beyond twice it, reset unanswered). "
        "Applies only while trusted-proxies is 0: behind proxies the peer is a proxy, whose own "
        "per-client limit does this.",
    )
    read_timeout: float = Field(
        10.0, gt=0, description="Seconds a client may take to send a request's headers and body."
    )
    early_admission: bool = Field(
        True,
        description="Judge POST / in the HTTP protocol, below ASGI (early admission); false sends every "
        "request through ASGI, to measure what early admission is worth.",
    )
    # nginx's own default (large_client_header_buffers 4 8k): far more than any client of this
    # service sends, and what a proxy in front would refuse anyway.
    max_header_bytes: int = Field(
        8192,
        ge=1024,
        le=1 << 20,
        description="Largest request head (request line and headers) in bytes; a larger one gets 431 "
        "and the connection is closed.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual sources, with empty variables read as unset."""
        return init_settings, EnvironmentSource(settings_cls), dotenv_settings, file_secret_settings

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        scheme = "" if value is None else value.get_secret_value().partition("://")[0].removeprefix("async+")
        if value is not None and scheme not in REDIS_SCHEMES:
            raise ValueError("give a redis://, rediss:// or redis+unix:// URL")
        return value

    @field_validator("sentry_dsn")
    @classmethod
    def _sentry_dsn_form(cls, value: SecretStr | None) -> SecretStr | None:
        dsn = "" if value is None else value.get_secret_value()
        if dsn:
            parts = urlsplit(dsn)
            if parts.scheme not in ("http", "https") or not parts.username or not parts.hostname:
                raise ValueError("give a Sentry DSN, https://KEY@HOST/PROJECT")
        return value

    @field_validator("rules_file")
    @classmethod
    def _readable_rules(cls, path: Path | None) -> Path | None:
        if path is not None:
            try:
                path.read_bytes()
            except OSError as exc:
                raise ValueError(f"cannot read {str(path)!r}: {exc.strerror}") from None
        return path

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value != "auto" and value not in ENGINE_NAMES:
            raise ValueError(f"unknown engine {value!r}; choose auto or one of {', '.join(ENGINE_NAMES)}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("allowed_params", mode="before")
    @classmethod
    def _parse_allowed(cls, value: object) -> object:
        if isinstance(value, str):
            return AllowedParamsList.validate_json(value)
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

    @model_validator(mode="after")
    def _parse_rules_and_params(self) -> Settings:
        if self.rules is not None and self.rules_file is not None:
            raise ValueError("give rules or rules_file, not both")
        if self.rules_file is not None:
            self._rule_set = parse_rules(self.rules_file.read_text())
        else:
            self._rule_set = parse_rules(DEFAULT_RULES if self.rules is None else self.rules)
        self._scrypt_params = tuple(allowed.to_params() for allowed in self.allowed_params)
        return self

    @property
    def rule_set(self) -> tuple[Rule, ...]:
        """The rules in force: given inline, from the file, or the built-in default set."""
        return self._rule_set

    @model_validator(mode="after")
    def _derive_prefix_lengths(self) -> Settings:
        self._prefix_lengths = PrefixLengths(ipv4=self.ipv4_prefix, ipv6=self.ipv6_prefix)
        return self

    @property
    def prefix_lengths(self) -> PrefixLengths:
        """What ip_prefix rules count together, per address family."""
        return self._prefix_lengths

    @property
    def scrypt_params(self) -> tuple[ScryptParams, ...]:
        """The allowed sets as engine parameters."""
        return self._scrypt_params
