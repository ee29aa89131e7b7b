"""Parse Prometheus text (a file) with the Prometheus Python client's parser
and print each sample as one JSON line: {"name", "labels", "value"}. A
malformed exposition fails with the parser's error."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

with open(sys.argv[1], encoding="utf-8") as exposition:
    text = exposition.read()
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        print(json.dumps({"name": sample.name, "labels": sample.labels, "value": sample.value}))
