"""Analysis: model saliency, human vs model heatmaps, metrics, reports (SPEC §6)."""
