"""The sha256 of each weights file this task ships, pinned in code so that a change to the
weights is a change to reviewed code (``manifest.json`` alone could be edited to match modified
weights). ``OnnxAdapter`` refuses a shipped file whose bytes do not hash to this.

After retraining and exporting, put the new digests here (``sha256sum weights/*.onnx``: stage 1,
stage 2 and the Grad-CAM head ``export.py`` cuts from it) in the same commit as the weights.
"""

WEIGHTS_SHA256 = {
    "stage1.onnx": "823b5fbda15b450836e91be91b4a89a575c9e192e09229540bb9367f4a19d5b3",
    "stage2.onnx": "a963ccaf60b7843ceb243f5124bdf6f8c8e9f931b33935f2208ad68ef861049d",
    "stage2_gradcam_head.onnx": "56ebba34e42c6a6934ed3d3356e3031c3c268edfa6b6f71b385f89c7cc7f00c8",
}
