"""The sha256 of each weights file this task ships, pinned in code so that a change to the
weights is a change to reviewed code (``manifest.json`` alone could be edited to match modified
weights). ``OnnxAdapter`` refuses a shipped file whose bytes do not hash to this.

After retraining and exporting, put the new digest here (``sha256sum weights/*.onnx``) in the
same commit as the weights.
"""

WEIGHTS_SHA256 = {
    "lumbar_ccfnet.onnx": "7a5403fd51cd22c8493d47d77a7a7efc892e5cec2597f04a20860f6b700c850a",
}
