"""ctdistill: distil big chest-CT classifiers into tiny, quantized ones, and say honestly how well they do.

The pipeline (``ctdistill.run.pipeline.run``) fine-tunes teachers from ``keras.applications``, distils each
into the seed's compact student CNN with Hinton knowledge distillation, trains the same student from
scratch as a baseline, quantizes the student with LiteRT and evaluates every model.
"""

import os

# TensorFlow enables its oneDNN kernels by default only on CPUs with AVX-512 features. Measured on a
# 2-core AVX2 AMD EPYC (BENCHMARKS.md): ResNet50 epochs 2.4x faster, the student 1.2x, with them on.
# Takes effect only if TensorFlow is not imported yet; an explicit setting by the user wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
