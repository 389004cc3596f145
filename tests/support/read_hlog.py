"""Reads faultline's .hlog interval logs with the independent Python HdrHistogram
implementation (`pip install hdrhistogram`) and prints, per file, the merged
count and percentiles as JSON: what report.json says, computed by another reader."""
import json
import math
import sys

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

def nearest_rank(histogram, percentile):
    """The smallest recorded value (as its bucket's highest equivalent) such
    that at least `percentile` % of the samples are at or below it. hdrh's own
    get_value_at_percentile rounds the target count half-up (HdrHistogram Java
    before 2.1.10); faultline, like current HdrHistogram, takes the ceiling."""
    target = max(1, math.ceil(percentile / 100.0 * histogram.get_total_count()))
    seen = 0
    for step in histogram.get_recorded_iterator():
        seen += step.count_at_value_iterated_to
        if seen >= target:
            return histogram.get_highest_equivalent_value(step.value_iterated_to)
    return histogram.get_max_value()


result = {}
for path in sys.argv[1:]:
    # Auto-resizing is not supported by the Python reader; a wide range with
    # faultline's 3 significant digits holds every latency (µs, up to an hour).
    reference = HdrHistogram(1, 3_600_000_000, 3)
    total = HdrHistogram(1, 3_600_000_000, 3)
    reader = HistogramLogReader(path, reference)
    intervals = 0
    while True:
        histogram = reader.get_next_interval_histogram()
        if histogram is None:
            break
        intervals += 1
        total.add(histogram)
    reader.close()
    result[path] = {
        "intervals": intervals,
        "count": total.get_total_count(),
        "p50": nearest_rank(total, 50),
        "p90": nearest_rank(total, 90),
        "p99": nearest_rank(total, 99),
        "p999": nearest_rank(total, 99.9),
        "max": total.get_max_value(),
    }
json.dump(result, sys.stdout)
