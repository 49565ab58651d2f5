"""tfltransfer: build on-device-trainable TFLite bundles from a frozen base and a trainable head."""

__version__ = "1.0.0"
