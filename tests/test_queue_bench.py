"""measure_queue_throughput (helpers/queue_bench.py); no speed is asserted."""

import pytest

from helpers import context, producer_consumer
from helpers.queue_bench import measure_queue_throughput


@pytest.mark.parametrize("item_bytes", [0, 100, 1 << 20])
def test_returns_a_positive_rate(item_bytes):
    rate = measure_queue_throughput(item_bytes, 20, ctx=context())
    assert isinstance(rate, float) and rate > 0


def test_ctx_defaults_to_the_course_context():
    assert measure_queue_throughput(10, 5) > 0


def test_is_reexported_for_the_summary_notebook():
    assert producer_consumer.measure_queue_throughput is measure_queue_throughput


@pytest.mark.start_method_independent
@pytest.mark.parametrize("item_bytes, n_items", [(-1, 5), (10, 0)])
def test_rejects_nonsense(item_bytes, n_items):
    with pytest.raises(ValueError):
        measure_queue_throughput(item_bytes, n_items)
