"""What users look at: heatmap overlays, Pareto plots, the paper's tables and figures."""
