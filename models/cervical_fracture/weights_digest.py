"""The sha256 of each weights file this task ships, pinned in code so that a change to the
weights is a change to reviewed code (``manifest.json`` alone could be edited to match modified
weights). ``OnnxAdapter`` refuses a shipped file whose bytes do not hash to this.

After retraining and exporting, put the new digests here (``sha256sum weights/*.onnx``) in the
same commit as the weights.
"""

WEIGHTS_SHA256 = {
    "stage1.onnx": "823b5fbda15b450836e91be91b4a89a575c9e192e09229540bb9367f4a19d5b3",
    "stage2.onnx": "4b8393bb330dc4228801f987fa8e65b4ce7f9335a7358eb3fa9ca36a16b1ea31",
}
