"""Vision-language track: a tiny offline VLM (``mhpo.vl.tiny``), synthetic visual tasks (``mhpo.vl.tasks``), the VL
reward (``mhpo.vl.rewards``), the tiny VL run wrapper (``mhpo.vl.train``) and the VL table (``mhpo.vl.aggregate``).
Training itself is ``mhpo.train`` / ``mhpo.trainer`` (a recipe with ``data.image_field``). See docs/vl.md."""
