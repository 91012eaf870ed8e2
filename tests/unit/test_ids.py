"""Ids sort in creation order, even many in one millisecond."""

from tidings.domain.ids import id_time_ms, new_id


def test_ids_made_in_a_burst_sort_in_creation_order():
    ids = [new_id() for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_id_carries_its_creation_time():
    import time

    before = time.time_ns() // 1_000_000
    made = new_id()
    assert len(made) == 26
    assert before <= id_time_ms(made) <= time.time_ns() // 1_000_000
