"""Linear probe of the frozen ImageNet EfficientNet-Lite0 features on the real data, by input size.

What the pretrained features know before any fine-tuning: the run's loader (crop to the body) at
each side, the base's global-average-pooled features, a logistic regression (standardised, C 0.1)
fitted on the given train split and scored on the given valid and test splits.

    python bench/lite_probe.py --data ../shared/data/chest-ct-scan --sizes 32,64,128,224
    python bench/lite_probe.py --data ../shared/data/chest-ct-scan --sizes 32,64,96 --enlarge 224
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--sizes", default="32,64,128,224", help="comma-separated sides the images are decoded at")
    parser.add_argument("--enlarge", type=int, default=None,
                        help="enlarge every decoded image to this side before the network (what a small image gives)")
    parser.add_argument("--teacher", default="efficientnet_lite0")
    args = parser.parse_args(argv)

    import keras
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ctdistill.data import load_dataset
    from ctdistill.models.efficientnet_lite import efficientnet_lite
    from ctdistill.run.data_steps import enlarged

    print("| decoded at | network input | valid acc % | test acc % |\n|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        data = load_dataset(args.data, size=size, channels=3, crop="body")
        side = args.enlarge or size
        base = efficientnet_lite(args.teacher, weights="imagenet", input_shape=(side, side, 3))
        features = keras.Sequential([base, keras.layers.GlobalAveragePooling2D()])
        f = {s: features.predict((enlarged(data.split(s), side) if args.enlarge else data.split(s)).x.astype("float32"),
                                 batch_size=32, verbose=0) for s in ("train", "valid", "test")}
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000)).fit(f["train"], data.train.y)
        print(f"| {size} px | {side} px | {100 * clf.score(f['valid'], data.valid.y):.1f} | "
              f"{100 * clf.score(f['test'], data.test.y):.1f} |", flush=True)


if __name__ == "__main__":
    main()
