"""squall/secrets.py: the key, encryption, checks and log masking (no I/O but the key file)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from squall.exceptions import BadInput, PayloadTooLarge
from squall.secrets import (
    KEY_ENV,
    KEY_FILE,
    MASK,
    MAX_SECRET_BYTES,
    LogMasker,
    SecretBox,
    SecretKey,
    SecretKeyError,
    SecretUnreadable,
    check_secret_name,
    check_secret_value,
    load_secret_key,
    masker_for,
    new_key_text,
    parse_key,
)
from squall.types import LogLevel, LogLine


def box(source: str = KEY_ENV) -> SecretBox:
    return SecretBox(parse_key(new_key_text(), source))


# ------------------------------------------------------------------ encryption


def test_a_sealed_value_opens_again_and_does_not_contain_the_plaintext() -> None:
    sealer = box()
    sealed = sealer.seal("TOKEN", "tok-😀-1234567890")

    assert sealer.open("TOKEN", sealed) == "tok-😀-1234567890"
    assert b"1234567890" not in sealed
    assert sealer.seal("TOKEN", "tok-😀-1234567890") != sealed  # a fresh nonce each time


def test_a_ciphertext_does_not_open_under_another_name() -> None:
    sealer = box()
    sealed = sealer.seal("TOKEN", "value")

    with pytest.raises(SecretUnreadable, match="altered or damaged"):
        sealer.open("OTHER", sealed)


def test_another_key_is_reported_as_a_changed_key_naming_where_the_key_comes_from() -> None:
    sealed = box().seal("TOKEN", "value")

    with pytest.raises(SecretUnreadable) as error:
        box("the key file /data/secret-key").open("TOKEN", sealed)

    message = str(error.value)
    assert "set with another secret key" in message and "the key changed" in message
    assert "/data/secret-key" in message and KEY_ENV in message
    assert "squall secret set TOKEN" in message


@pytest.mark.parametrize("position", [-1, -20, 25])
def test_a_tampered_ciphertext_is_refused(position: int) -> None:
    sealer = box()
    sealed = bytearray(sealer.seal("TOKEN", "a value of some length"))
    sealed[position] ^= 0x01

    with pytest.raises(SecretUnreadable, match="altered or damaged"):
        sealer.open("TOKEN", bytes(sealed))


def test_a_truncated_or_foreign_ciphertext_is_refused() -> None:
    with pytest.raises(SecretUnreadable, match="format"):
        box().open("TOKEN", b"\x01short")
    with pytest.raises(SecretUnreadable, match="format"):
        box().open("TOKEN", b"\x09" + b"x" * 64)


# ------------------------------------------------------------------ the key


def test_keys_are_read_in_either_base64_alphabet_with_or_without_padding() -> None:
    raw = bytes(range(200, 232))
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode().rstrip("=")

    assert parse_key(standard, "x").key == raw == parse_key(urlsafe + "\n", "x").key


@pytest.mark.parametrize("text", ["short", base64.b64encode(b"k" * 16).decode(), "not base64 at all!!", "a" * 64])
def test_a_malformed_key_says_what_a_key_is_and_how_to_make_one(text: str) -> None:
    with pytest.raises(SecretKeyError) as error:
        parse_key(text, KEY_ENV)

    message = str(error.value)
    assert message.startswith(f"{KEY_ENV} is not a secret key") and "32 random bytes" in message
    assert "/dev/urandom" in message


def test_the_key_file_is_made_once_readable_by_the_owner_only(tmp_path: Path) -> None:
    first = load_secret_key(tmp_path)
    second = load_secret_key(tmp_path)

    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.key == second.key and len(first.key) == 32
    assert first.source == f"the key file {path}"


def test_the_environment_variable_wins_and_no_file_is_made(tmp_path: Path) -> None:
    text = new_key_text()

    key = load_secret_key(tmp_path, text)

    assert key == parse_key(text, KEY_ENV) and key.source == KEY_ENV
    assert not (tmp_path / KEY_FILE).exists()


def test_a_damaged_key_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("oops\n")

    with pytest.raises(SecretKeyError, match="the key file .*secret-key is not a secret key"):
        load_secret_key(tmp_path)


def test_the_key_id_depends_on_the_key_only() -> None:
    text = new_key_text()
    assert parse_key(text, "a").key_id == parse_key(text, "b").key_id != parse_key(new_key_text(), "a").key_id
    assert isinstance(parse_key(text, "a"), SecretKey)


# ------------------------------------------------------------------ checks


@pytest.mark.parametrize("name", ["TOKEN", "_x", "Db_Password_2"])
def test_env_var_names_are_secret_names(name: str) -> None:
    assert check_secret_name(name) == name


@pytest.mark.parametrize("name", ["2FA", "MY-TOKEN", "a b", "", "x.y"])
def test_other_names_are_refused(name: str) -> None:
    with pytest.raises(BadInput, match="is not a secret name"):
        check_secret_name(name)


def test_values_are_checked_for_size_text_and_emptiness() -> None:
    assert check_secret_value("é".encode()) == "é"
    assert len(check_secret_value(b"x" * MAX_SECRET_BYTES)) == MAX_SECRET_BYTES
    with pytest.raises(PayloadTooLarge, match=f"at most {MAX_SECRET_BYTES} bytes"):
        check_secret_value(b"x" * (MAX_SECRET_BYTES + 1))
    with pytest.raises(BadInput, match="empty"):
        check_secret_value(b"")
    with pytest.raises(BadInput, match="not UTF-8"):
        check_secret_value(b"\xff\xfe")
    with pytest.raises(BadInput, match="NUL"):
        check_secret_value(b"a\0b")


# ------------------------------------------------------------------ masking


def line(message: str) -> LogLine:
    return LogLine(1.0, LogLevel.INFO, message)


def test_values_are_masked_wherever_they_appear_in_a_line() -> None:
    masker = LogMasker({"TOKEN": "tok-123456", "PASSWORD": "hunter22"})

    assert masker.mask("token=tok-123456, again tok-123456; pw hunter22") == f"token={MASK}, again {MASK}; pw {MASK}"
    assert masker.mask("nothing here") == "nothing here"


def test_the_longest_value_is_masked_first() -> None:
    masker = LogMasker({"SHORT": "abcd", "LONG": "abcdefgh"})

    assert masker.mask("abcdefgh abcd") == f"{MASK} {MASK}"


def test_json_and_repr_spellings_and_each_line_of_a_multi_line_value_are_masked() -> None:
    value = 'pa"ss\\wo\nrd-line-two'
    masker = LogMasker({"V": value})

    assert masker.mask(json.dumps({"v": value})) == '{"v": "' + MASK + '"}'
    assert masker.mask(repr(value)) == f"'{MASK}'"
    assert masker.mask("second line: rd-line-two") == f"second line: {MASK}"
    assert LogMasker({"V": "mot-de-passé"}).mask(json.dumps("mot-de-passé")) == f'"{MASK}"'


def test_values_shorter_than_four_characters_are_left_alone() -> None:
    assert masker_for({"PIN": "123"}) is None
    masker = masker_for({"PIN": "123", "KEY": "1234"})
    assert masker is not None and masker.mask("123 1234") == f"123 {MASK}"


def test_mask_lines_keeps_the_lines_without_a_secret_as_they_are() -> None:
    masker = LogMasker({"TOKEN": "s3cr3t-value"})
    clean, dirty = line("hello"), LogLine(2.0, LogLevel.ERROR, "[ERROR]\tbad s3cr3t-value")

    masked = masker.mask_lines([clean, dirty])

    assert masked[0] is clean
    assert masked[1] == LogLine(2.0, LogLevel.ERROR, f"[ERROR]\tbad {MASK}")
