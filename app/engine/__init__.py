"""Running task adapters: the adapter contract, ONNX Runtime sessions, the task registry."""
