"""The sha256 of each weights file this task ships, pinned in code so that a change to the
weights is a change to reviewed code (``manifest.json`` alone could be edited to match modified
weights). ``OnnxAdapter`` refuses a shipped file whose bytes do not hash to this.

Written by ``python -m models.spine_xray.export --run DIR --out models/spine_xray/weights --pin``;
commit it with the weights.
"""

WEIGHTS_SHA256 = {
    "spine_unet_ap.onnx": "7b1c0a14999c14e2d7a685ae2a14261d498c4826966d41e5da3a4e72487b52ac",
    "spine_unet_lateral.onnx": "2ec6bc25a15ea59e206af84ca85c0e04567a865341356242bc3279151b5c2f12",
    "spine_classifier.onnx": "4c0cfaea7e759119f68ad4da26e3f1bac8ad7c169bc798abf3bbab69d5d8b018",
    "spine_classifier_gradcam_head.onnx": "8b7533744cee2ba026e884d098affbbe4f0e601fa9daf65b9f442c8c8f7b1ae4",
}
