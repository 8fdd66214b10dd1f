"""Registry entries of the vision-language benchmarks (``modality: vl``), read by the same loader as the text ones
(``benchmarks.catalog``); ``_vl.yaml`` holds their shared defaults (``include: _vl.yaml``)."""
