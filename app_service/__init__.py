"""EdgeX application service that runs TensorFlow Lite models on MessageBus events."""

SERVICE_KEY = "app-tflite-inference"
__version__ = "0.1.0"
