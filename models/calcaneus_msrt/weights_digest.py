"""The sha256 of each weights file this task ships, pinned in code so that a change to the
weights is a change to reviewed code (``manifest.json`` alone could be edited to match modified
weights). ``OnnxAdapter`` refuses a shipped file whose bytes do not hash to this.

After retraining and exporting, put the new digests here (``sha256sum weights/*.onnx``) in the
same commit as the weights.
"""

WEIGHTS_SHA256 = {
    "calcaneus_msrt.onnx": "047a3677168c39af7f101437548772dc285ead8c1a19200592b561505899159b",
    "calcaneus_unet.onnx": "1680475272f9f98eccd3966d90fea92baf9f6871455009e14cdcc6f6052b0c63",
}
