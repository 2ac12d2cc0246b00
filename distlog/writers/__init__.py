"""Writers that own on-store formats: chunked Zarr tables and per-rank text logs."""
