"""Analysis: model saliency, human vs model heatmaps, metrics, reports (docs/algorithms.md#model-heatmaps)."""
