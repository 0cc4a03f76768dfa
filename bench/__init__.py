"""The benchmark instrument: `python -m bench.run --n N --out BENCHMARKS.md` (`make bench`).

`bench.corpus` generates N synthetic report pages in the sample site's templates and
serves them on loopback; `bench.run` measures extraction, a full nightly run, a no-op
rerun, reprocessing and loading against one dedicated Prefect server, and writes
BENCHMARKS.md. Benchmarks print figures; they never assert timings.
"""
