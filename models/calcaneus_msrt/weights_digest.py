"""The sha256 of each weights file this task ships, pinned in code so that a change to the
weights is a change to reviewed code (``manifest.json`` alone could be edited to match modified
weights). ``OnnxAdapter`` refuses a shipped file whose bytes do not hash to this.

After retraining and exporting, put the new digests here (``sha256sum weights/*.onnx``) in the
same commit as the weights.
"""

WEIGHTS_SHA256 = {
    "calcaneus_msrt.onnx": "16b2a4015dcc1f4035d15a9ba636339dabfaa864c37b7083cc7d2b84cdca6489",
    "calcaneus_unet.onnx": "72e4da7d44ed50925db495cba6a3db2e10475dcc9534be50d066888bf791d36f",
}
