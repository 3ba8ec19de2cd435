"""ctdistill: distil big chest-CT classifiers into tiny, quantized ones, and say honestly how well they do.

The pipeline (``ctdistill.pipeline.run``) fine-tunes teachers from ``keras.applications``, distils each
into the seed's compact student CNN with Hinton knowledge distillation, trains the same student from
scratch as a baseline, quantizes the student with LiteRT and evaluates every model.
"""

__version__ = "0.1.0"
