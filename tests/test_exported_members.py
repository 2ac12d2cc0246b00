"""The public surface is what ``__all__`` says, and every name in it exists."""

import distlog


def test_all_is_complete_and_importable():
    assert sorted(distlog.__all__) == distlog.__all__
    for name in distlog.__all__:
        assert getattr(distlog, name) is not None, name
    public = {n for n in dir(distlog) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(distlog, n)).__name__ == "module"}
    assert public - modules - {"annotations"} == set(distlog.__all__)


def test_errors_share_one_base():
    from distlog.query.errors import QueryError

    for name in ("StorageError", "FlushError", "FlushTimeout", "WriterError", "RunStateError",
                 "UnknownScheme", "BackendNotInstalled"):
        assert issubclass(getattr(distlog, name), distlog.DistlogError), name
    assert issubclass(QueryError, distlog.DistlogError)
