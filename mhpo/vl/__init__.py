"""Vision-language track: a tiny offline VLM (``mhpo.vl.tiny``), synthetic visual tasks (``mhpo.vl.tasks``),
rewards (``mhpo.vl.rewards``) and the VL trainer additions (``mhpo.vl.trainer``). See docs/vl.md."""
