"""Ids sort in creation order, even many in one millisecond."""

from datetime import UTC, datetime, timedelta

from tidings.domain.ids import first_id_at, new_id


def test_ids_made_in_a_burst_sort_in_creation_order():
    # Cursors and SSE replay rely on it.
    ids = [new_id() for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_an_id_is_26_characters_of_crockford_base32():
    made = new_id()
    assert len(made) == 26
    assert set(made) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_the_ids_made_after_a_moment_sort_from_the_first_id_at_it():
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    made = new_id()
    after = datetime.now(UTC) + timedelta(milliseconds=1)

    assert first_id_at(before) <= made < first_id_at(after)


def test_the_first_id_before_1970_is_the_smallest_id_of_all():
    assert first_id_at(datetime(1900, 1, 1, tzinfo=UTC)) == "0" * 26
    assert first_id_at(datetime(9999, 12, 31, tzinfo=UTC)) > new_id()
