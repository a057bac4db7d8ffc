"""The network as pure tensor code: feature statistics and AdaIN (``ops``), the VGG-19 encoder, the
decoder, padding to encodable sizes, and ``ModelConfig``. Imports only torch: no files, devices or
printing."""
