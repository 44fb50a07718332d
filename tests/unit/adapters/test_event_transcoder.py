"""The event store's transcoder reads what the library's JSONTranscoder wrote as the library reads it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Transcoding, TranscodingNotRegisteredError

from adapters.persistence import database as db
from adapters.persistence.transcoder import OrjsonReadingTranscoder
from application.event_log import EventLog


@dataclass(frozen=True)
class Clip:
    owner: UUID
    spans: list[tuple[Decimal, Decimal]]


class ClipAsDict(Transcoding):
    """A transcoding whose data holds transcoded values of its own (decoded first, innermost first)."""

    type = Clip
    name = "clip"

    def encode(self, obj: Clip) -> dict[str, Any]:
        return {"owner": obj.owner, "spans": [list(span) for span in obj.spans]}

    def decode(self, data: dict[str, Any]) -> Clip:
        assert isinstance(data["owner"], UUID), "inner values are decoded before the outer one"
        return Clip(data["owner"], [(start, end) for start, end in data["spans"]])


def transcoders() -> tuple[JSONTranscoder, OrjsonReadingTranscoder]:
    library, ours = JSONTranscoder(), OrjsonReadingTranscoder()
    for transcoder in (library, ours):
        Application().register_transcodings(transcoder)
        transcoder.register(ClipAsDict())
    return library, ours


OBJECTS: list[Any] = [
    {"timestamp": datetime(2031, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))), "id": uuid4(), "amount": Decimal("0.10")},
    {"options": {}, "inputs": {}, "outputs": [], "nested": {"deeper": {"at": Decimal("1E-7")}, "list": [uuid4(), [Decimal("2")]]}},
    {"clip": Clip(uuid4(), [(Decimal("0"), Decimal("1.5"))]), "clips": [Clip(uuid4(), [])]},
    {"text": "naïve ✓ \u2028 \"quoted\" \\", "flags": [True, False, None], "numbers": [0, -1, 2**63 - 1, 1.5, -0.0, 1e300]},
    {"_type_": "not a transcoding name", "other": 1},  # a plain dict that only looks like one
    {"_type_": "uuid_hex"},
    [1, {"a": Decimal("3")}, []],
    {"big": 2**70, "small": -(2**70)},  # beyond orjson's integers: read as the library reads them
    {"nan": math.nan, "inf": math.inf},  # orjson refuses these tokens: read as the library reads them
]


@pytest.mark.parametrize("obj", OBJECTS, ids=range(len(OBJECTS)))
def test_every_payload_the_library_writes_is_read_back_as_the_library_reads_it(obj: Any) -> None:
    library, ours = transcoders()
    stored = library.encode(obj)

    assert repr(ours.decode(stored)) == repr(library.decode(stored))
    assert ours.encode(obj) == stored  # the stored format does not change


def test_an_unknown_transcoding_name_is_refused_as_the_library_refuses_it() -> None:
    library, ours = transcoders()
    stored = b'{"at":{"_type_":"no_such_type","_data_":"x"}}'

    for transcoder in (library, ours):
        with pytest.raises(TranscodingNotRegisteredError):
            transcoder.decode(stored)


def test_the_event_log_reads_with_it(tmp_path: Any) -> None:
    url = db.database_url(f"sqlite:///{tmp_path}/videogen.db", tmp_path)
    log = EventLog(env=db.event_store_env(url, cipher_key=None, compress=False))
    try:
        assert isinstance(log.mapper.transcoder, OrjsonReadingTranscoder)
    finally:
        log.close()
