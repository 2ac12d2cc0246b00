"""The hostile-name campaign, a smaller pass on S3 (moto on 127.0.0.1): object keys bring
their own traps (URL and percent characters, multibyte keys near the limits, prefixes).
Every name either raises ``ValueError`` or lists, reads back and survives ``gc --grace 0``;
no key is written outside the root's prefix."""

from __future__ import annotations

import pytest

from support.hostile_names import exercise, verify


pytestmark = [pytest.mark.s3]

# names that pass validation but could trip an object store (those rejected fail the same way
# on every backend, and the local campaign covers them)
S3_NAMES = [
    "n" * 255, "😀" * 63 + "abc", "%2e%2e/%2e%2e", "hash#1 a+b=c&d", "quote'\"",
    "Привет мир: ~$HOME",
]


def _keys(fs, bucket: str) -> set[str]:
    return set(fs.find(bucket, withdirs=False))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("i", range(len(S3_NAMES)))
def test_hostile_name_on_s3(s3_bucket, i):
    import s3fs

    name = S3_NAMES[i]
    url, opts = s3_bucket["url"], s3_bucket["storage_options"]
    bucket = s3_bucket["bucket"]
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **opts)
    fs.pipe(f"{bucket}/neighbour/keep.txt", b"not distlog's")  # a sibling of the root
    before = _keys(fs, bucket)
    acc = exercise(url, name, **opts)
    cli_opts = [a for k, v in opts.items() for a in ("-O", f"{k}={v}")]
    verify(url, acc, *cli_opts, **opts)
    after = _keys(fs, bucket)
    prefix = url[len("s3://"):] + "/"
    assert before <= after
    assert [k for k in after - before if not k.startswith(prefix)] == []
    assert fs.cat(f"{bucket}/neighbour/keep.txt") == b"not distlog's"
