"""Settings from the environment (names fixed by CONTRACT.md), read once by the composition root."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default=Path(".videogen"), validation_alias=_env("VIDEOGEN_DATA_DIR"))
    database_url: str | None = Field(default=None, validation_alias=_env("VIDEOGEN_DATABASE_URL"))
    provider: Literal["sandbox", "wavespeed"] | None = Field(default=None, validation_alias=_env("VIDEOGEN_PROVIDER"))
    wavespeed_api_key: SecretStr | None = Field(default=None, validation_alias=_env("WAVESPEED_API_KEY"))
    wavespeed_base_url: str = Field(default="https://api.wavespeed.ai", validation_alias=_env("WAVESPEED_BASE_URL"))
    wavespeed_webhook_secret: SecretStr | None = Field(default=None, validation_alias=_env("WAVESPEED_WEBHOOK_SECRET"))
    wavespeed_max_concurrent: int = Field(default=3, ge=1, validation_alias=_env("WAVESPEED_MAX_CONCURRENT"))
    wavespeed_submits_per_minute: int = Field(default=5, ge=1, validation_alias=_env("WAVESPEED_SUBMITS_PER_MINUTE"))
    public_url: str | None = Field(default=None, validation_alias=_env("VIDEOGEN_PUBLIC_URL"))
    deadline_s: float = Field(default=1800.0, gt=0, validation_alias=_env("VIDEOGEN_DEADLINE_S"))
    max_download_bytes: int = Field(default=2 * 1024**3, gt=0, validation_alias=_env("VIDEOGEN_MAX_DOWNLOAD_BYTES"))
    allowed_output_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias=_env("VIDEOGEN_ALLOWED_OUTPUT_HOSTS")
    )
    allowed_input_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias=_env("VIDEOGEN_ALLOWED_INPUT_HOSTS")
    )
    cipher_key: SecretStr | None = Field(default=None, validation_alias=_env("VIDEOGEN_CIPHER_KEY"))
    compress: bool = Field(default=False, validation_alias=_env("VIDEOGEN_COMPRESS"))

    @field_validator("allowed_output_hosts", "allowed_input_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(host.strip() for host in value.split(",") if host.strip())
        return value

    @field_validator("cipher_key")
    @classmethod
    def _an_aes_key(cls, key: SecretStr | None) -> SecretStr | None:
        # Checked here so that a mistyped key is named as a setting, not met as a decoding error deep in a read.
        if key is None or not key.get_secret_value():
            return key
        try:
            size = len(base64.b64decode(key.get_secret_value(), validate=True))
        except binascii.Error:
            size = 0
        if size not in (16, 24, 32):
            raise ValueError("not an AES key (16, 24 or 32 bytes in base64); `videogen keygen` prints one")
        return key

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def encrypted_at_rest(self) -> bool:
        """Events are stored AES-encrypted, so no read table may keep a prompt in the clear."""
        return bool(self.cipher_key and self.cipher_key.get_secret_value())

    @property
    def provider_name(self) -> str:
        if self.provider is not None:
            return self.provider
        return "wavespeed" if self.wavespeed_api_key else "sandbox"

    @property
    def configured_providers(self) -> tuple[str, ...]:
        return ("sandbox", "wavespeed") if self.wavespeed_api_key else ("sandbox",)
