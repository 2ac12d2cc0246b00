"""Zarr v3 metadata documents as zarr writes them, for the tables distlog builds without zarr
(series, logs, files): an array's ``zarr.json``, its bytes, and a group's consolidated metadata.
Each table's tests compare what is built here with what zarr writes for the same arrays."""

from __future__ import annotations

import json
from typing import Any, Sequence


def array_doc(shape: Sequence[int], data_type: str, chunk_shape: Sequence[int], fill_value: Any,
              codecs: list[dict[str, Any]], attributes: dict[str, Any], separator: str = "/") -> dict[str, Any]:
    """An array's ``zarr.json`` (regular chunk grid, default chunk key encoding)."""
    return {"shape": list(shape), "data_type": data_type,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunk_shape)}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": separator}},
            "fill_value": fill_value, "codecs": codecs, "attributes": attributes,
            "zarr_format": 3, "node_type": "array", "storage_transformers": []}


def consolidated(group: dict[str, Any], members: dict[str, Any]) -> dict[str, Any]:
    """``group``'s ``zarr.json`` with ``members``' documents inline, as
    ``zarr.consolidate_metadata`` writes it."""
    return {**group, "consolidated_metadata": {"kind": "inline", "must_understand": False, "metadata": members}}


def doc_bytes(doc: Any) -> bytes:
    """A metadata document as zarr writes it (indented by 2)."""
    return json.dumps(doc, indent=2).encode()
