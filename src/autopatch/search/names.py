"""The names of the search spaces and objectives: plain strings, importable without optuna or torch (the CLI's
--help)."""

SPACE_NAMES = ("ofa", "ofa-fixed", "pretrained")
# the study's performance objective (maximised beside GFLOPs): its name -> the trial metric it is, and its label
OBJECTIVES = {"rwap": "rwap", "image-ap": "image_ap", "image-auroc": "image_auroc"}
OBJECTIVE_LABELS = {"rwap": "rwAP", "image-ap": "image AP", "image-auroc": "image AUROC"}
PIXEL_OBJECTIVES = ("rwap",)  # need masks
# the study's cost objective (minimised): its name -> its label; latency is measured in one deploy runtime
COSTS = {"gflops": "GFLOPs", "latency": "latency ms"}
RUNTIMES = ("torch", "onnx", "openvino")
DEFAULT_RUNTIME = "torch"
# Synthetic anomalies (data.synthetic) a search adds to its validation unless told otherwise: added to one real
# anomaly per defect type they lifted the pick's test rwAP on three of the four shared tests (README, issue 12).
# A Test' oracle search adds none: its validation is the test split.
DEFAULT_SYNTHETIC = 16


def default_synthetic(oracle: bool) -> int:
    """How many synthetic validation anomalies a search adds when the caller does not say."""
    return 0 if oracle else DEFAULT_SYNTHETIC


def objective_label(study_attrs: dict) -> str:
    """How a study's objective is printed, from its recorded attributes (rwAP for studies made before it)."""
    return OBJECTIVE_LABELS[study_attrs.get("objective", "rwap")]


def objective_metric(study_attrs: dict) -> str:
    """The trial metric a study maximises, from its recorded attributes (rwap for studies made before it)."""
    return OBJECTIVES[study_attrs.get("objective", "rwap")]


def cost_label(study_attrs: dict) -> str:
    """How a study's cost objective is printed, from its recorded attributes (GFLOPs for studies made before it)."""
    cost = study_attrs.get("cost", "gflops")
    return COSTS[cost] + (f" ({study_attrs.get('runtime')})" if cost == "latency" else "")
