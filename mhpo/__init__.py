"""mhpo-bench: MHPO (arXiv 2603.16929) and the GRPO family behind one objective contract."""

__version__ = "0.1.0"
