"""Secrets: the key that encrypts them, their encryption, the checks of names and values, and
the masking of their values in log lines. The user's guide is docs/secrets.md.

* **The key** is kept outside the store: `SQUALL_SECRET_KEY` when set (every node sharing a
  PostgreSQL store must have the same one), else the file `DATA/secret-key`, made (mode
  0600) on a node's first start. It is 32 random bytes, written in base64.
* **Encryption** is AES-256-GCM (`cryptography`'s AESGCM). A sealed secret is
  `version (1 byte) | key id (8) | nonce (12) | ciphertext and tag`; the associated data is
  the secret's name, so a ciphertext copied to another name does not open. The key id (an
  HMAC of the key, which tells nothing of the key) lets a wrong key be told apart from a
  damaged ciphertext, and each gets its own message.
* **Masking**: `LogMasker` replaces the values a function was given (and their JSON and
  Python-repr spellings, and each line of a multi-line value) by `***` in the lines it
  printed. Values shorter than MIN_MASKED_LENGTH characters are not masked: they would
  hide ordinary words and numbers.

The store only ever sees ciphertext (squall/store/secrets.py); the node decrypts and keeps
the values its functions list (squall/node/secret_env.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from squall.exceptions import BadInput, PayloadTooLarge, SquallError
from squall.manifest.values import is_env_name
from squall.settings import SECRET_KEY
from squall.types import LogLine

KEY_ENV = SECRET_KEY.name
KEY_FILE = "secret-key"
KEY_BYTES = 32
MAX_SECRET_BYTES = 32 * 1024
"""The largest value of one secret, in bytes of UTF-8 (Lambda allows 4 KB for all of a
function's environment together; squall checks each secret alone)."""
MIN_MASKED_LENGTH = 4
MASK = "***"

_VERSION = b"\x01"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_HEADER = len(_VERSION) + _KEY_ID_BYTES + _NONCE_BYTES
MAKE_KEY_HINT = "head -c 32 /dev/urandom | base64"


class SecretKeyError(SquallError):
    """The node's secret key is malformed or cannot be read or made."""


class SecretUnreadable(SquallError):
    """A stored secret does not decrypt: another key sealed it, or it was damaged."""


# ------------------------------------------------------------------ the key


@dataclass(frozen=True)
class SecretKey:
    """The key, and where it came from (named in errors: `SQUALL_SECRET_KEY` or the file)."""

    key: bytes
    source: str

    @property
    def key_id(self) -> bytes:
        return hmac.new(self.key, b"squall secret key id", hashlib.sha256).digest()[:_KEY_ID_BYTES]


def parse_key(text: str, source: str) -> SecretKey:
    """A key written as base64 (standard or URL-safe alphabet, padding optional)."""
    cleaned = text.strip()
    try:
        key = base64.b64decode(cleaned.replace("-", "+").replace("_", "/") + "=" * (-len(cleaned) % 4),
                               validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise SecretKeyError(f"{source} is not a secret key: it must be {KEY_BYTES} random bytes in base64 "
                             f"(copy another node's DATA/{KEY_FILE}, or make one with: {MAKE_KEY_HINT})")
    return SecretKey(key, source)


def new_key_text() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def load_secret_key(data_dir: Path, configured: str | None = None) -> SecretKey:
    """`configured` (the server's `SQUALL_SECRET_KEY`) when set; otherwise the key in
    `DATA/secret-key`, made (mode 0600) when missing. Raises SecretKeyError when the key is
    malformed."""
    if configured:
        return parse_key(configured, KEY_ENV)
    path = data_dir / KEY_FILE
    source = f"the key file {path}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            return parse_key(path.read_text(), source)
        except OSError as exc:
            raise SecretKeyError(f"cannot read {source}: {exc}") from exc
    except OSError as exc:
        raise SecretKeyError(f"cannot make {source}: {exc}") from exc
    text = new_key_text()
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    return parse_key(text, source)


# ------------------------------------------------------------------ encryption


class SecretBox:
    """Seals and opens secret values with one key."""

    def __init__(self, key: SecretKey) -> None:
        self.key = key
        self._aead = AESGCM(key.key)

    def seal(self, name: str, value: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _VERSION + self.key.key_id + nonce + self._aead.encrypt(nonce, value.encode(), _aad(name))

    def open(self, name: str, sealed: bytes) -> str:
        """The value of secret `name`; SecretUnreadable (saying why and what to do) when it
        does not decrypt with this key."""
        again = f"set it again: squall secret set {name}"
        if len(sealed) < _HEADER or sealed[:1] != _VERSION:
            raise SecretUnreadable(f"secret {name} is not stored in a format this squall reads; {again}")
        if not hmac.compare_digest(sealed[1:1 + _KEY_ID_BYTES], self.key.key_id):
            raise SecretUnreadable(
                f"secret {name} cannot be decrypted: it was set with another secret key than this node's "
                f"({self.key.source}); the key changed since. Give the node the key it was set with "
                f"({KEY_ENV}, or DATA/{KEY_FILE}), or {again}")
        nonce = sealed[1 + _KEY_ID_BYTES:_HEADER]
        try:
            return self._aead.decrypt(nonce, sealed[_HEADER:], _aad(name)).decode()
        except (InvalidTag, UnicodeDecodeError):
            raise SecretUnreadable(f"secret {name} cannot be decrypted: its stored ciphertext was altered or "
                                   f"damaged; {again}") from None


def _aad(name: str) -> bytes:
    return b"squall secret " + name.encode()


# ------------------------------------------------------------------ checks


def check_secret_name(name: str) -> str:
    if not is_env_name(name):
        raise BadInput(f"{name!r} is not a secret name: a secret is injected as the environment variable "
                       "of the same name, so use letters, digits and _, not starting with a digit")
    return name


def check_secret_value(data: bytes) -> str:
    """The value sent for a secret, as text: non-empty UTF-8 without NUL, at most MAX_SECRET_BYTES."""
    if len(data) > MAX_SECRET_BYTES:
        raise PayloadTooLarge(f"the value is {len(data)} bytes; a secret holds at most {MAX_SECRET_BYTES} "
                              "bytes (put larger data in a bucket and keep its key as the secret)")
    if not data:
        raise BadInput("the value is empty")
    try:
        value = data.decode()
    except UnicodeDecodeError:
        raise BadInput("the value is not UTF-8 text: a secret becomes an environment variable, so "
                       "encode binary values (e.g. base64) first") from None
    if "\0" in value:
        raise BadInput("the value contains a NUL character, which an environment variable cannot hold")
    return value


# ------------------------------------------------------------------ masking


class LogMasker:
    """Replaces the values of secrets by MASK in log lines."""

    def __init__(self, values: Mapping[str, str]) -> None:
        spellings = {spelling for value in values.values() for spelling in _spellings(value)
                     if len(spelling) >= MIN_MASKED_LENGTH}
        ordered = sorted(spellings, key=lambda text: (-len(text), text))  # longest first
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        return text if self._pattern is None else self._pattern.sub(MASK, text)

    def mask_lines(self, lines: Sequence[LogLine]) -> list[LogLine]:
        pattern = self._pattern
        if pattern is None:
            return list(lines)
        return [LogLine(line.ts, line.level, pattern.sub(MASK, line.message)) if pattern.search(line.message)
                else line for line in lines]


def _spellings(value: str) -> set[str]:
    """How a value shows up in output: as is, each line of it, JSON-escaped (with non-ASCII
    characters as is, and as \\u escapes as Python's json writes them), repr-escaped."""
    found = {value, orjson.dumps(value).decode()[1:-1], json.dumps(value)[1:-1], repr(value)[1:-1]}
    if "\n" in value:
        found.update(line.strip() for line in value.splitlines())
    return found


def masker_for(values: Mapping[str, str]) -> LogMasker | None:
    """A masker of `values`, or None when none of them is long enough to be masked."""
    masker = LogMasker(values)
    return masker if masker else None
