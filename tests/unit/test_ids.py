"""Ids sort in creation order, even many in one millisecond."""

from tidings.domain.ids import new_id


def test_ids_made_in_a_burst_sort_in_creation_order():
    # Cursors and SSE replay rely on it.
    ids = [new_id() for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_an_id_is_26_characters_of_crockford_base32():
    made = new_id()
    assert len(made) == 26
    assert set(made) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
