"""autopatch: training-free architecture search for few-shot anomaly segmentation (AutoPatch)."""

__version__ = "0.1.0"
