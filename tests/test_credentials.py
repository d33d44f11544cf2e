"""Function credentials (squall/credentials.py): issued, checked, expired, forged."""

from __future__ import annotations

from squall import credentials

KEY = b"k" * 32
NOW = 1_800_000_000.0


def test_an_issued_credential_names_its_function_and_checks_out_until_it_expires() -> None:
    credential = credentials.issue(KEY, "ci-webhook_2", NOW)

    assert credentials.function_of(credential.access_key_id) == "ci-webhook_2"
    assert credentials.secret_for(KEY, credential.access_key_id, NOW) == credential.secret_access_key
    assert credentials.check_token(KEY, credential.token, NOW + 60) == "ci-webhook_2"
    assert credentials.check_token(KEY, credential.token, NOW + credentials.CREDENTIAL_LIFETIME) is None
    assert credentials.secret_for(KEY, credential.access_key_id, NOW + credentials.CREDENTIAL_LIFETIME) is None


def test_another_key_a_changed_id_or_a_guessed_secret_do_not_check_out() -> None:
    credential = credentials.issue(KEY, "worker", NOW)
    other = credentials.issue(KEY, "admin-tool", NOW)

    assert credentials.check_token(b"other" * 8, credential.token, NOW) is None
    assert credentials.check_token(KEY, f"{other.access_key_id}:{credential.secret_access_key}", NOW) is None
    assert credentials.check_token(KEY, f"{credential.access_key_id}:guess", NOW) is None
    assert credentials.check_token(KEY, "admin:token", NOW) is None
    assert credentials.secret_for(KEY, "SQF!!!", NOW) is None


def test_access_key_ids_are_upper_case_letters_and_digits_as_aws_ones() -> None:
    """SigV4 splits the Credential field at "/": the id must hold no such character."""
    access_key_id = credentials.issue(KEY, "a-very_long-function-name", NOW).access_key_id
    assert access_key_id.isalnum() and access_key_id == access_key_id.upper()
    assert 16 <= len(access_key_id) <= 128


def test_a_function_credential_has_its_own_session_token_and_the_admin_key_none() -> None:
    credential = credentials.issue(KEY, "worker", NOW)
    other = credentials.issue(KEY, "worker", NOW + 1)

    assert credentials.session_token_for(KEY, credential.access_key_id) == credential.session_token
    assert credential.session_token != other.session_token  # each credential its own
    assert credentials.session_token_for(b"other" * 8, credential.access_key_id) != credential.session_token
    assert credentials.session_token_for(KEY, "admin") is None
