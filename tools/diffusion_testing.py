"""Randomly initialised Stable Diffusion pipelines built offline, for plumbing tests and benchmarks.

    path = build_random_sd_pipeline(tmp / "tiny")              # a few MB, seconds to build
    path = build_random_sd_pipeline(tmp / "sdt", size="sd-turbo")  # SD 2.1 / SD-Turbo shapes

No weights ship offline, but the compute of a pipeline depends only on its shapes. The CLIP
tokenizer is written from open_clip's bundled BPE vocabulary (`bpe_simple_vocab_16e6.txt.gz`),
which is the same vocabulary as OpenAI CLIP's `vocab.json`/`merges.txt`.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

__all__ = ["write_clip_tokenizer", "random_sd_pipeline", "build_random_sd_pipeline", "build_random_taesd", "SIZES"]

# Component shapes. "tiny": the smallest that runs every code path; "sd-turbo": the published
# configs of stabilityai/sd-turbo (= SD 2.1 base), whose step cost is that of the real model.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "unet": dict(
            sample_size=8,
            block_out_channels=(32, 64),
            layers_per_block=1,
            norm_num_groups=32,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
        ),
        "vae": dict(
            block_out_channels=(32, 64),
            latent_channels=4,
            norm_num_groups=32,
            sample_size=64,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        ),
        "text": dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=32,
        ),
    },
    "sd-turbo": {
        "unet": dict(
            sample_size=64,
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            attention_head_dim=(5, 10, 20, 20),
            cross_attention_dim=1024,
            use_linear_projection=True,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        ),
        "vae": dict(
            block_out_channels=(128, 256, 512, 512),
            latent_channels=4,
            layers_per_block=2,
            sample_size=768,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
        ),
        "text": dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=23,
            num_attention_heads=16,
            max_position_embeddings=77,
            projection_dim=512,
            hidden_act="gelu",
        ),
    },
}


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-to-printable-character table (as in open_clip.tokenizer)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def write_clip_tokenizer(folder: str | Path) -> Path:
    """Write `vocab.json`, `merges.txt` and the tokenizer config of CLIP's tokenizer into `folder`."""
    import importlib.util

    from polymodal.errors import require

    require("open_clip", "clip", "the CLIP tokenizer vocabulary")
    spec = importlib.util.find_spec("open_clip")
    bpe = Path(spec.submodule_search_locations[0]) / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]  # the slice open_clip and OpenAI CLIP use
    vocab = list(_bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False), "utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", "utf-8")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": 77,
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
            }
        ),
        "utf-8",
    )
    return folder


def _tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    write_clip_tokenizer(folder)
    return CLIPTokenizer.from_pretrained(str(folder))


def build_random_taesd(folder: str | Path | None = None, seed: int = 0):
    """An `AutoencoderTiny` (TAESD architecture, default config) with random weights."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    vae = AutoencoderTiny()
    if folder is not None:
        vae.save_pretrained(str(folder))
    return vae


def random_sd_pipeline(size: str = "tiny", seed: int = 0, scheduler: str = "euler_a"):
    """A random `StableDiffusionPipeline` with the shapes `SIZES[size]`, in memory."""
    import tempfile

    import torch
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    shapes = SIZES[size]
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = _tokenizer(Path(tmp))
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **shapes["text"],
        )
    )
    unet = UNet2DConditionModel(in_channels=4, out_channels=4, **shapes["unet"])
    vae = AutoencoderKL(in_channels=3, out_channels=3, **shapes["vae"])
    sched_cls = {"euler_a": EulerAncestralDiscreteScheduler, "euler": EulerDiscreteScheduler}[scheduler]
    # SD-Turbo's scheduler: trailing timesteps, so one step starts from pure noise
    sched = sched_cls(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing", steps_offset=1
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=sched,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_random_sd_pipeline(folder: str | Path, size: str = "tiny", seed: int = 0, scheduler: str = "euler_a") -> Path:
    """Save a random `StableDiffusionPipeline` with the shapes `SIZES[size]` to `folder`."""
    folder = Path(folder)
    random_sd_pipeline(size, seed, scheduler).save_pretrained(str(folder))
    return folder
