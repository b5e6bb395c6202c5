"""Gaze layer: display geometry, trackers, fixation detection, heatmaps (SPEC §3–§5).

No Qt and no TensorFlow here: importing ``gazelab.gaze`` stays fast.
"""
