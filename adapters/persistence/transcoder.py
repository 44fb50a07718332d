"""The event store's transcoder: the library's JSON format, written by its JSONTranscoder, read with orjson.

Reading is what replays and projections do most; orjson parses in C, and the library's transcodings are then
applied to each decoded object, innermost first, as its `json` object hook would. The stored bytes do not change.
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder

# orjson reads an integer beyond 64 bits as a float; `json` keeps it exact.
_EXACT_INTEGERS = float(2**63)


class _NotReadExactly(Exception):
    pass


def _check_exact(number: float) -> None:
    if abs(number) >= _EXACT_INTEGERS and number.is_integer():
        raise _NotReadExactly


class OrjsonReadingTranscoder(JSONTranscoder):
    def decode(self, data: bytes) -> Any:
        try:
            return self._revive(orjson.loads(data))
        except (orjson.JSONDecodeError, _NotReadExactly):
            # What orjson refuses (NaN, Infinity) or reads inexactly is read as the library reads it.
            return super().decode(data)

    def _revive(self, value: Any) -> Any:
        if type(value) is list:
            for index, item in enumerate(value):
                if type(item) is dict or type(item) is list:
                    value[index] = self._revive(item)
                elif type(item) is float:
                    _check_exact(item)
            return value
        names = self.names
        for key, item in value.items():
            kind = type(item)
            if kind is str:
                continue
            if kind is dict:
                if len(item) == 2 and type(item.get("_data_")) is str and item.get("_type_") in names:
                    value[key] = names[item["_type_"]].decode(item["_data_"])  # a flat transcoded value, inline
                elif item:
                    value[key] = self._revive(item)
            elif kind is list:
                if item:
                    value[key] = self._revive(item)
            elif kind is float:
                _check_exact(item)
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            return self._decode_obj(value)
        return value
