"""Pure inference core of the landslide mapper: numpy, GDAL and onnxruntime only.

Nothing in this package imports QGIS or TensorFlow: the Processing algorithms in
``algorithms/`` and the trainer in ``training/`` both build on it.
"""
