"""The secrets part of the Store contract: named secret values, stored encrypted (the store
only ever sees ciphertext; squall/secrets.py holds the key and does the encryption)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown of a secret: never its value."""

    name: str
    created_at: float
    updated_at: float


class SecretStore:
    def put_secret(self, name: str, ciphertext: bytes, *, now: float) -> None:
        """Create or replace the secret `name`."""
        raise NotImplementedError

    def list_secrets(self) -> list[SecretInfo]:
        """Every secret, ordered by name."""
        raise NotImplementedError

    def get_secrets(self, names: list[str]) -> dict[str, bytes]:
        """The ciphertexts of those of `names` that exist."""
        raise NotImplementedError

    def delete_secret(self, name: str) -> bool:
        """Remove the secret `name`; False when there was none."""
        raise NotImplementedError
