"""Training package of the landslide mapper: network, data pipeline and export.

This package needs TensorFlow with Keras 3 (see ``requirements-training.txt``),
but importing the package itself stays light: TensorFlow and Keras are only
imported by the submodules that need them (for example
:mod:`training.network`).
"""
