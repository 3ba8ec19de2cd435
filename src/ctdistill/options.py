"""The flags of ``ctdistill run``, declared once: (flag, config key, type, help).

A flag that is not given leaves the config file's (or the default) value alone; ``bool`` keys get
``--flag`` / ``--no-flag``. Defaults are those of :class:`ctdistill.config.Config`.
"""

RUN_OPTIONS = (
    ("--data", "data", str, "dataset folder: split tree (train/valid|val/test), class-folder tree, or the seed's "
                            "numpy layout (X_train.npy ...). Default: built-in synthetic CT phantoms"),
    ("--teachers", "teachers", str, "comma-separated teachers: vgg16, vgg19, resnet50 (resnet), densenet121 "
                                    "(densenet), efficientnetb3 (efficientnet), nasnetmobile, xception. Default: all seven"),
    ("--weights", "weights", str, "teacher weights: imagenet, none, or a folder/file of Keras weight files "
                                  "(offline use). Default: imagenet"),
    ("--image-size", "image_size", int, "input height and width in pixels (default 32, as the seed)"),
    ("--channels", "channels", int, "1 (grey) or 3 (default 3)"),
    ("--temperature", "temperature", float, "distillation temperature T > 0 (default 2)"),
    ("--alpha", "alpha", float, "weight of the hard-label loss in [0, 1]; 1 - alpha weighs the soft loss (default 0.5)"),
    ("--batch-size", "batch_size", int, "training batch size (default 256)"),
    ("--epochs", "epochs", int, "maximum epochs per training stage; early stopping may end sooner (default 300)"),
    ("--patience", "patience", int, "epochs without validation improvement before stopping (default 30)"),
    ("--monitor", "monitor", str, "validation metric for early stopping and model selection: val_accuracy "
                                  "or val_loss (default val_accuracy)"),
    ("--lr", "learning_rate", float, "Adam learning rate for students and the teacher head (default 1e-3)"),
    ("--finetune-lr", "finetune_learning_rate", float, "learning rate whenever the teacher base trains: after unfreezing it, or "
                                                              "throughout with --weights none (default 1e-4)"),
    ("--teacher-epochs", "teacher_epochs", int, "maximum epochs of teacher training (default: same as --epochs)"),
    ("--frozen-epochs", "frozen_epochs", int, "max epochs of the frozen-base teacher phase (pretrained weights "
                                              "only; default 10)"),
    ("--unfreeze-layers", "unfreeze_layers", int, "base layers to unfreeze from the top; -1 = all (default -1)"),
    ("--quant-modes", "quant_modes", str, "comma-separated PTQ modes: dynamic, float16, int8, 16x8 (int16 activations, "
                                              "int8 weights) (default dynamic,float16,int8)"),
    ("--bootstrap-resamples", "bootstrap_resamples", int, "bootstrap resamples of the 95%% intervals; 0 = none "
                                                          "(default 1000)"),
    ("--ci-method", "ci_method", str, "bootstrap interval method: percentile (default) or BCa"),
    ("--ece-bins", "ece_bins", int, "equal-width bins of the expected calibration error (default 10)"),
    ("--max-quant-drop", "max_quant_drop", float, "quantization safety gate: most validation-accuracy points full "
                                                  "int8 may lose before int8-mixed, 16x8, float16 are tried "
                                                  "(default 1.0; negative = off)"),
    ("--split", "split", str, "given: keep the dataset's splits; grouped: re-split so that no group of exact or "
                              "near copies straddles two splits (stratified, seeded); auto (default): given when "
                              "the data has splits, grouped otherwise"),
    ("--seed", "seed", int, "random seed; the same seed, data and config repeat a run (default 0)"),
    ("--seeds", "seeds", str, "comma-separated seeds: also repeat the student stages (scratch, distilled, int8) "
                              "with these, from the same teachers, and report mean ± std (e.g. 0,1,2)"),
    ("--preset", "preset", str, "named training recipe: ctdistill (default, measured in BENCHMARKS.md) or seed "
                                "(the seed script's: no augmentation, constant Adam, stop on val_loss, given valid)"),
    ("--augment", "augment", str, "comma-separated training augmentations: hflip, rotate, translate, zoom, "
                                  "contrast, or none (default all five)"),
    ("--lr-schedule", "lr_schedule", str, "cosine (warm-up, then cosine decay; default) or constant"),
    ("--warmup-epochs", "warmup_epochs", int, "linear warm-up epochs; model selection starts after them (default 5)"),
    ("--weight-decay", "weight_decay", float, "decoupled weight decay (AdamW); 0 = Adam (default 1e-4)"),
    ("--label-smoothing", "label_smoothing", float, "label smoothing of the hard labels (default 0.1)"),
    ("--class-balance", "class_balance", str, "balanced: resample train to equal class counts; none (default)"),
    ("--validation", "validation", str, "carved (default): a validation split carved from train+valid by copy "
                                        "groups; given: the dataset's own valid split"),
    ("--valid-fraction", "valid_fraction", float, "share of train+valid carved out for validation (default 0.2)"),
    ("--bn-momentum", "bn_momentum", float, "BatchNorm moving-average momentum of every model (default 0.9)"),
    ("--student", "student", str, "student head: seed (Flatten, as the seed; default) or gap (global average pooling)"),
    ("--teacher-views", "teacher_views", int, "with augmentation: compute the teacher's logits once on this many "
                                              "augmented copies of the training images and sample batches from "
                                              "them (default 8); 0 runs the teacher on every batch"),
    ("--strict", "strict", bool, "stop at the first unreadable image (default: skip it, list it at the end and in "
                                 "manifest.json)"),
    ("--deterministic", "deterministic", bool, "deterministic TensorFlow ops: the same data, config and seed give "
                                               "identical predictions (default on; off is ~10%% faster per "
                                               "epoch, BENCHMARKS.md)"),
    ("--ensemble", "ensemble", str, "also distil one student from all teachers' mean logits: mean, weighted "
                                    "(by validation accuracy), or none (default)"),
)
