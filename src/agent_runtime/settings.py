"""The service's own settings, from the environment (pydantic-settings).

OpenTelemetry's variables stay with the SDK (see :mod:`telemetry`); these are the service's.
Validators refuse unsafe values at start-up rather than failing on the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting has an environment variable (the field name, upper-cased, or alias)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    port: int = Field(default=8001, ge=1, le=65535, validation_alias="PORT")
    host: str = Field(default="127.0.0.1", validation_alias="HOST")
    internal_key: SecretStr | None = Field(
        default=None, validation_alias="AGENT_RUNTIME_INTERNAL_KEY"
    )
    approval_timeout_s: float = Field(
        default=300.0, gt=0, le=86_400, validation_alias="AGENT_RUNTIME_APPROVAL_TIMEOUT_S"
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=64 * 1_048_576,
        validation_alias="AGENT_RUNTIME_MAX_BODY_BYTES",
    )
    data_dir: Path = Field(
        default=Path(".agent-runtime"), validation_alias="AGENT_RUNTIME_DATA_DIR"
    )
    database_url: SecretStr | None = Field(default=None, validation_alias="DATABASE_URL")
    """The store: unset for the embedded SQLite file, ``postgresql://…`` for the shared one
    (a secret: it may hold a password, and is never printed)."""
    database_statement_timeout_s: float = Field(
        default=5.0, gt=0, le=600, validation_alias="AGENT_RUNTIME_DB_STATEMENT_TIMEOUT_S"
    )
    """The longest one database statement may run before it is cancelled (PostgreSQL)."""
    database_pool_size: int = Field(
        default=10, ge=1, le=200, validation_alias="AGENT_RUNTIME_DB_POOL_SIZE"
    )
    database_spans: bool = Field(default=True, validation_alias="AGENT_RUNTIME_DB_SPANS")
    """Database client spans for every statement (PostgreSQL; statement parameters are
    never recorded)."""
    llm_provider: Literal["scripted", "openai"] = Field(
        default="scripted", validation_alias="LLM_PROVIDER"
    )
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_model: str = Field(default="gpt-4o-mini", validation_alias="OPENAI_MODEL")
    command_timeout_s: float = Field(
        default=10.0, gt=0, le=600, validation_alias="AGENT_RUNTIME_COMMAND_TIMEOUT_S"
    )
    audit_resend_interval_s: float = Field(
        default=10.0, gt=0, validation_alias="AGENT_RUNTIME_AUDIT_RESEND_INTERVAL_S"
    )
    agents_file: Path | None = Field(default=None, validation_alias="AGENT_RUNTIME_AGENTS_FILE")
    """The agents (TOML); unset: the five built-in agents shipped in the package."""
    context_max_tokens: int = Field(
        default=100_000, ge=256, le=10_000_000, validation_alias="AGENT_RUNTIME_CONTEXT_MAX_TOKENS"
    )
    """The most a model call's input may hold (estimated tokens); older turns are left out
    first. Leave headroom under the model's real limit for its answer."""
    run_lease_s: float = Field(
        default=30.0, ge=1, le=3600, validation_alias="AGENT_RUNTIME_RUN_LEASE_S"
    )
    """How long a run's hold on its session outlives a process that died holding it."""
    sweep_interval_s: float = Field(
        default=5.0, gt=0, le=3600, validation_alias="AGENT_RUNTIME_SWEEP_INTERVAL_S"
    )
    """How often paused runs past their approval deadline are timed out and resumed."""
    cluster_refresh_s: float = Field(
        default=5.0, gt=0, le=3600, validation_alias="AGENT_RUNTIME_CLUSTER_REFRESH_S"
    )
    """How often the cluster gauges (sessions, sessions running, approvals pending) are read
    from the store: one small query per replica and period."""
    decision_poll_s: float = Field(
        default=2.0, gt=0, le=60, validation_alias="AGENT_RUNTIME_DECISION_POLL_S"
    )
    """How often a waiting stream reads its approval again without a wake-up: the longest a
    decision made on another replica waits when its notification is lost."""
    decision_notify: bool = Field(default=True, validation_alias="AGENT_RUNTIME_DECISION_NOTIFY")
    """Announce decisions to the other replicas (PostgreSQL LISTEN/NOTIFY); off, waiting
    streams find them by polling alone."""
    user_header: str = Field(
        default="X-User-ID",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9-]+$",
        validation_alias="AGENT_RUNTIME_USER_HEADER",
    )
    """The header the trusted gateway names the deciding person in; read only when
    ``AGENT_RUNTIME_INTERNAL_KEY`` is set (otherwise any caller could claim any name)."""
    workspace_dir: Path | None = Field(default=None, validation_alias="AGENT_RUNTIME_WORKSPACE_DIR")
    """Where the per-session tool workspaces live (default ``<data dir>/workspaces``); with
    replicas, a volume every replica mounts."""

    @field_validator("internal_key")
    @classmethod
    def _key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() == "":
            return None
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("AGENT_RUNTIME_INTERNAL_KEY must be at least 16 characters")
        return value
