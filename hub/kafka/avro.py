"""The hub's Avro codec: cavro, compiled once per schema, with the options
every reader and writer of the hub shares (``hub.kafka.serde`` frames its bodies;
``hub.kafka.schemas`` checks that it resolves each contract's versions as
fastavro does)."""
from __future__ import annotations

from typing import Any
from collections.abc import Mapping

import cavro

# Unions are written from the value (a record in a union may be named with
# the tuple notation, as fastavro reads it: ``return_record_name``); read,
# records are dicts, and a record in a union comes back as (name, dict).
# Timestamps are written with whole-number arithmetic: cavro's default goes
# through a float and is a millisecond short for some instants after 2038.
OPTIONS = cavro.DEFAULT_OPTIONS.replace(allow_tuple_notation=True, record_decodes_to_dict=True,
                                        union_decodes_to=cavro.UnionDecodeOption.TYPE_TUPLE_IF_RECORD,
                                        alternate_timestamp_millis_encoding=True)


def codec(schema: Any, external: Mapping[str, Any] | None = None) -> cavro.Schema:
    """A schema (its JSON form) compiled; ``external``: named types it uses but does not define."""
    return cavro.Schema(schema, options=OPTIONS.with_external_types(external) if external else OPTIONS)


def resolved(reader: cavro.Schema, writer: cavro.Schema) -> Any:
    """What reads the bodies ``writer`` wrote as ``reader``: the reader itself
    when both are the same schema, else cavro's schema resolution (raises
    when there is none)."""
    return reader if writer.canonical_form == reader.canonical_form else reader.reader_for_writer(writer)
