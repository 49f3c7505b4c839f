"""The connector test kit: check a connector on a sample export, without a broker.

One call runs a connector over a sample export as `hub connector run` would
(the runner's own reading, validation, encoding and dead letters), keeps
what it would have published, and checks it:

```python
from pathlib import Path

from hub.testing import check_connector
from county_connectors.inspection import CountyInspectionConnector

report = check_connector(CountyInspectionConnector, Path("samples/日常监督检查.xlsx"))
print(report)        # every check, PASS or FAIL, with its reason and findings
assert report.ok, report
```

In a test suite, `assert report.ok, report` prints the failed checks'
findings. The connector may be given as its class (installed or not yet), as
an installed connector's entry-point name (`"samr.penalty"`) or as
`"module:Class"`; `settings=` sets the validation limits and the
personal-data key (default: `Settings()`).

Each check passes or fails with a reason (`report.checks`,
`report.check(name)`, `report.failed`; the names are constants of
`hub.testing.conformance`, which describes each in full):

- `declaration`: the class declares what the SDK needs (name, agency,
  description, a layout of columns, optional columns and personal fields that
  belong to it, `to_events`), and its entry point bears its name;
- `reads_sample`: the runner reads the sample to its end;
- `rows_accounted`: nothing is lost: rows in = rows with events + rows
  rejected, each rejection with a reason code;
- `no_connector_errors`: `to_events` raises nothing but `RowRejected`;
- `avro_contract`: every event fits the event contract, every dead letter
  the dead-letter contract;
- `deterministic_ids`: running the sample again gives the same event IDs;
- `no_personal_data`: no person of the sample (personal columns, ID and
  telephone numbers, names a role word introduces) stands in clear in an
  event or a dead letter;
- `flow_accepts`: the events go through the workers' flow on the in-memory
  bus without a dead letter.

The same from the command line, for an installed connector or a
`module:Class`; the exit status is 1 when a check fails:

```sh
hub connector check county.inspection --path samples/日常监督检查.xlsx
```

The in-memory bus (`Bus`) is the workers' flow (`hub.flow.Flow`) with
Kafka's ordering guarantees alone: records in order within a partition, in
any interleaving across partitions. It carries every message kind (events,
teams' feedback, clock ticks, entity resolution's traffic) and keeps what the
flow sends, stores and tells the audit trail, so tests can try many orders of
delivery fast.
"""
from hub.testing.bus import Bus, Delivered
from hub.testing.conformance import Check, ConformanceReport, check_connector

__all__ = ["Bus", "Check", "ConformanceReport", "Delivered", "check_connector"]
