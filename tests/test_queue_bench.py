"""measure_queue_throughput (helpers/queue_bench.py); no speed is asserted. Lectures 01,
02 and 05 measure 16 B to 1 MiB items through it (also as ``pc.`` and ``pipes.``)
under every start method; here only what they do not: empty items, the default
context, and arguments that make no sense."""

import pytest

from helpers.queue_bench import measure_queue_throughput


def test_empty_items_on_the_default_context():
    rate = measure_queue_throughput(0, 20)
    assert isinstance(rate, float) and rate > 0


@pytest.mark.start_method_independent
@pytest.mark.parametrize("item_bytes, n_items", [(-1, 5), (10, 0)])
def test_rejects_nonsense(item_bytes, n_items):
    with pytest.raises(ValueError):
        measure_queue_throughput(item_bytes, n_items)
