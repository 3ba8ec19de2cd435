"""Models: the table of teachers (``teachers.TEACHERS``), the seed's student CNN (``student``), and
loading a saved model to predict with it (``inference``, which imports neither Keras nor TensorFlow
at module level: ``predict`` on a ``.tflite`` file needs LiteRT only, so this package imports nothing
on its own)."""
