"""Vision-language training pieces: a tiny offline VLM (``mhpo.vl.tiny``, built by ``mhpo-bench tiny-model --kind
vl``), synthetic visual tasks (``mhpo.vl.tasks``), the VL reward (``mhpo.vl.rewards``), the tiny VL run wrapper
(``mhpo.vl.train``) and the VL table (``mhpo.vl.aggregate``, written by ``mhpo-bench aggregate``). Training itself
is ``mhpo.train`` / ``mhpo.trainer`` (a recipe with ``data.image_field``); VL benchmarks are entries of the one
registry (``benchmarks``). See docs/vl.md."""
