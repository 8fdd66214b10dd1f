"""Models: loading and checkpoint checks (:mod:`mhpo.models.loading`), the tiny offline text model
(:mod:`mhpo.models.tiny`) and VLM (:mod:`mhpo.models.tiny_vl`)."""
