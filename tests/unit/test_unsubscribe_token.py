"""Unsubscribe tokens: what one signs comes back out; anything else is refused."""

import pytest

from tidings.domain.unsubscribe import InvalidToken, Unsubscribe, sign, verify

SECRET = "server-secret"


def test_a_signed_token_verifies_to_what_it_carries():
    wish = Unsubscribe("u_42", "promotions", "email")

    assert verify(SECRET, sign(SECRET, wish)) == wish


def test_a_token_is_safe_in_a_query_string_as_it_is():
    token = sign(SECRET, Unsubscribe("user with spaces/and?odd&chars", "c"))

    assert all(c.isalnum() or c in "-_." for c in token)


def test_a_token_signed_with_another_secret_is_refused():
    with pytest.raises(InvalidToken):
        verify(SECRET, sign("another-secret", Unsubscribe("u_42", "promotions")))


def test_a_token_whose_payload_was_changed_is_refused():
    token = sign(SECRET, Unsubscribe("u_42", "promotions"))
    other = sign(SECRET, Unsubscribe("u_43", "promotions"))
    swapped = other.split(".")[0] + "." + token.split(".")[1]

    with pytest.raises(InvalidToken):
        verify(SECRET, swapped)


@pytest.mark.parametrize("token", ["", "abc", "abc.def", ".", "a" * 5000, "!!.??"])
def test_malformed_tokens_are_refused(token):
    with pytest.raises(InvalidToken):
        verify(SECRET, token)
