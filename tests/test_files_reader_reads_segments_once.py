"""``run.files`` on an object store read every manifest segment again at every call (one GET
per save, per call: ``find``, ``read_bytes``, ``versions`` and ``table`` each re-read them all).
Now a reader keeps the segments it read (a segment is written once and never changes) and
fetches only new ones, while a live run's new saves still show at the next call."""

from __future__ import annotations

from typing import Any

import pytest

from distlog.layout import MANIFEST_DIR
from distlog.storage.base import SEGMENT_SUFFIX


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_a_reader_fetches_each_manifest_segment_once(s3_bucket: dict[str, Any]) -> None:
    import distlog
    from support.faultproxy import FaultProxy

    exp = distlog.get_logger(s3_bucket["url"], telemetry=False, heartbeat_interval=0,
                             **s3_bucket["storage_options"])
    with exp.experiment("e"), exp.run("r"):
        for i in range(6):
            exp.files("cfg").save({"i": i}, f"c{i}.json", step=i)
        segs = f"/{MANIFEST_DIR}/"
        with FaultProxy(s3_bucket["endpoint_url"], fail_rate=0.0) as proxy:
            run = distlog.open_run(f"{s3_bucket['url']}/e/r",
                                   **{**s3_bucket["storage_options"], "endpoint_url": proxy.url})

            def segment_gets() -> int:
                return sum(1 for m, p, *_ in proxy.log if m == "GET" and segs in p and SEGMENT_SUFFIX + "/" in p)

            assert run.files.paths() == [f"cfg/c{i}.json" for i in range(6)]
            first = segment_gets()
            assert first == 6, proxy.log  # one segment per save (each save is durable at once)
            assert run.files.find("c3.json").step == 3
            assert run.files.load("c5.json") == {"i": 5}
            assert [r.version for r in run.files.versions("c0.json")] == [1]
            assert len(run.files.table()) == 6
            assert segment_gets() == first  # nothing read again
            exp.files("cfg").save({"i": 6}, "c6.json", step=6)  # the live run saves one more
            assert run.files.find("c6.json").step == 6
            assert segment_gets() == first + 1  # only the new segment
    # the same answers as a fresh reader's (the run closed: its files are those seven)
    fresh = distlog.open_run(f"{s3_bucket['url']}/e/r", **s3_bucket["storage_options"])
    assert fresh.files.table().to_dict("records") == run.files.table().to_dict("records")
