"""Reading a figure off a Prometheus text page."""

from __future__ import annotations

from logpipe.dev.scrape import sample_total

PAGE = """\
# HELP logpipe_shipper_lines_acked_total Lines acknowledged.
# TYPE logpipe_shipper_lines_acked_total counter
logpipe_shipper_lines_acked_total{type="access"} 3.0
logpipe_shipper_lines_acked_total{type="app"} 4.0
logpipe_shipper_lines_acked_total_created{type="app"} 1.7e9
"""


def test_the_labelled_series_of_a_metric_add_up_and_comments_never_count() -> None:
    assert sample_total(PAGE, 'logpipe_shipper_lines_acked_total{type="app"}') == 4.0
    assert sample_total(PAGE, "logpipe_shipper_lines_acked_total{") == 7.0


def test_a_bare_name_also_takes_the_metrics_it_begins_and_an_absent_one_is_zero() -> None:
    assert sample_total(PAGE, "logpipe_shipper_lines_acked_total") == 7.0 + 1.7e9
    assert sample_total(PAGE, "logpipe_nothing") == 0.0
