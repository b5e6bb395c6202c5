"""Gaze layer: display geometry, trackers, fixation detection, heatmaps (docs/algorithms.md).

No Qt and no TensorFlow here: importing ``gazelab.gaze`` stays fast.
"""
