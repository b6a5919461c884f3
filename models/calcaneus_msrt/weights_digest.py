"""The sha256 of each weights file this task ships, pinned in code so that a change to the
weights is a change to reviewed code (``manifest.json`` alone could be edited to match modified
weights). ``OnnxAdapter`` refuses a shipped file whose bytes do not hash to this.

After retraining and exporting, put the new digests here (``sha256sum weights/*.onnx``) in the
same commit as the weights.
"""

WEIGHTS_SHA256 = {
    "calcaneus_msrt.onnx": "047a3677168c39af7f101437548772dc285ead8c1a19200592b561505899159b",
    "calcaneus_unet.onnx": "06e89f76fe8ec504aac52aff66160469ecbd41ec8232977d72a71a2180b5d344",
}
