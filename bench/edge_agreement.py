"""How often the shipped int8 EfficientNet-Lite0 picks the float model's top-1 class, on photos
outside its calibration pool (edge.agreement: 16 photos x 8 views; n printed). The baseline, in
the same run, is how the figure used to be measured: the camera's default photos, which are
calibration photos themselves.

    .venv/bin/python -m bench edge_agreement [--json]
"""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> dict:
    import numpy as np

    from edge.agreement import heldout_photos, heldout_views, measure
    from edge.camera import default_photos
    from edge.capabilities import center_crop
    from edge.convert import torch_efficientnet_lite0
    from edge.models import MODEL_DIR

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    path = MODEL_DIR / "efficientnet_lite0_int8.tflite"
    model = torch_efficientnet_lite0()
    held = measure(path, heldout_views(heldout_photos()), model)
    in_pool = [(f"{n}/centre", np.round(center_crop(img, 224).astype(np.float32))) for n, img in default_photos()]
    baseline = measure(path, in_pool, model)
    result = {"heldout": held, "baseline_calibration_photos": baseline}
    if args.json:
        print(json.dumps(result))
        return result

    def line(what: str, a: dict) -> None:
        print(
            f"  {what:44s} n={a['n']:3d}  top-1 agreement {a['top1_agreement']:6.1%}  "
            f"float top-1 in int8 top-3 {a['float_top1_in_int8_top3']:6.1%}"
        )

    print(f"int8 vs float EfficientNet-Lite0 ({path.name}), top-1 class:")
    line(f"held out: all views of {held['photos']} photos", held["all_views"])
    for source, a in held["by_source"].items():
        line(f"held out: {source} photos, all views", a)
    for view, a in held["by_view"].items():
        line(f"held out: {view} views", a)
    line("baseline: calibration-pool photos (centre)", baseline["all_views"])
    print(f"  held-out disagreements: {', '.join(held['disagreements']) or 'none'}")
    return result


if __name__ == "__main__":
    main()
