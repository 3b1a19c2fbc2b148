"""The benchmarks' scenarios: the data they seed, the work they drive, the baselines they
compare with. `bench.api` and `bench.pipeline` run them and print the report."""
