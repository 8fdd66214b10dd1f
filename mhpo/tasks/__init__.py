"""Synthetic tasks with exact answers: text (:mod:`mhpo.tasks.text`) and visual (:mod:`mhpo.tasks.vl`)."""
