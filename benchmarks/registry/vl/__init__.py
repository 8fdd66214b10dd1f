"""Registry entries of the vision-language benchmarks (read by ``benchmarks.vl``, not by ``benchmarks.catalog``)."""
