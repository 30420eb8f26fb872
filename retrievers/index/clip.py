"""CLIP: figure images and text queries in one vector space, from any Hugging Face CLIP checkpoint.

``clip_model`` in the settings names a local directory (works offline) or a hub id, which
``litlab models prepare --clip`` downloads once into ``LITLAB_HOME/models/clip``; nothing is
downloaded when indexing or searching. Vectors are L2-normalised, so inner product is cosine.
Images go through Pillow and the Pillow image processor (no torchvision on this path).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from retrievers.errors import LibraryError

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

CLIP_HELP = ("set clip_model to a CLIP checkpoint directory (`litlab config set clip_model "
             "PATH`; on a connected machine a hub id such as openai/clip-vit-base-patch32 and "
             "`litlab models prepare --clip`), then `litlab library rebuild --figures`")


class ClipUnavailable(LibraryError):
    """No usable CLIP checkpoint: figures are searched by caption only."""


def prepared_dir(home: Path, name: str) -> Path:
    """Where ``models prepare --clip`` keeps a hub checkpoint."""
    return home / "models" / "clip" / name.replace("/", "__")


def clip_path(name: str | None, home: Path) -> Path:
    """The local directory of the CLIP checkpoint ``name``, or :class:`ClipUnavailable`."""
    if not name:
        raise ClipUnavailable("no CLIP model is set: figures are found by their captions only",
                              CLIP_HELP)
    for folder in (Path(name).expanduser(), prepared_dir(home, name)):
        if (folder / "config.json").is_file():
            return folder
    raise ClipUnavailable(f"CLIP model '{name}' is neither a checkpoint directory nor prepared",
                          "run `litlab models prepare --clip` on a connected machine, or "
                          "set clip_model to a local checkpoint directory")


def prepare(name: str, home: Path) -> Path:
    """Download a hub checkpoint once (``models prepare --clip``); a directory is used as is."""
    if (Path(name).expanduser() / "config.json").is_file():
        return Path(name).expanduser()
    target = prepared_dir(home, name)
    if (target / "config.json").is_file():
        return target
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(name, local_dir=target, allow_patterns=[
            "*.json", "*.txt", "*.safetensors", "*.model"])
    except Exception as e:  # noqa: BLE001 - offline, unknown id, or gated: one line either way
        raise ClipUnavailable(f"could not download CLIP model '{name}' ({type(e).__name__})",
                              "check the name and the network, or give a local directory"
                              ) from e
    return target


class ClipEmbedder:
    """Batched, normalised CLIP image and text embeddings on the CPU."""

    def __init__(self, folder: Path, batch_size: int = 16) -> None:
        import torch
        from transformers import AutoTokenizer, CLIPModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            from transformers import CLIPImageProcessorPil as Processor
        except ImportError:  # pragma: no cover - transformers before the Pillow backend
            from transformers import CLIPImageProcessor as Processor  # type: ignore[assignment]
        try:
            self.model = CLIPModel.from_pretrained(str(folder)).eval()
            self.processor = Processor.from_pretrained(str(folder))
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        except (OSError, ValueError) as e:
            raise ClipUnavailable(f"{folder} is not a usable CLIP checkpoint ({e})",
                                  CLIP_HELP) from e
        self.torch = torch
        self.name = str(folder)
        self.batch_size = batch_size
        self.dim = int(self.model.config.projection_dim)
        self.max_tokens = int(self.model.config.text_config.max_position_embeddings)
        self.image_size = int(self.model.config.vision_config.image_size)

    def pixels(self, images: list[Image]) -> object:
        """The processor's pixel tensor for a batch of RGB images (resize, crop, normalise)."""
        return self.processor(images=images, return_tensors="pt")["pixel_values"]

    def embed_images(self, images: list[Image]) -> np.ndarray:
        out = []
        for i in range(0, len(images), self.batch_size):
            out.append(self.image_features(self.pixels(images[i:i + self.batch_size])))
        return _stack(out, self.dim)

    def embed_files(self, paths: list[Path]) -> tuple[list[int], np.ndarray, dict[int, str]]:
        """Embed image files, a batch at a time: (indexes of the files embedded, their vectors,
        why each other one failed). Decoding on a second thread while the model runs gained
        nothing here (bench/figures.py): the forward pass already keeps both cores busy."""
        from retrievers.parsing.images import ImageRefused, open_raster

        done: list[int] = []
        parts: list[np.ndarray] = []
        failures: dict[int, str] = {}
        for start in range(0, len(paths), self.batch_size):
            images = []
            for i in range(start, min(start + self.batch_size, len(paths))):
                try:
                    images.append(open_raster(paths[i], fit=self.image_size))
                    done.append(i)
                except ImageRefused as e:
                    failures[i] = str(e)
            if images:
                parts.append(self.image_features(self.pixels(images)))
        return done, _stack(parts, self.dim), failures

    def image_features(self, pixel_values: object) -> np.ndarray:
        with self.torch.inference_mode(), _LOCK:
            features = _features(self.model.get_image_features(pixel_values=pixel_values))
        return _normalised(features)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[i:i + self.batch_size], padding=True, truncation=True,
                                   max_length=self.max_tokens, return_tensors="pt")
            with self.torch.inference_mode(), _LOCK:
                features = _features(self.model.get_text_features(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]))
            out.append(_normalised(features))
        return _stack(out, self.dim)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_texts([text])[0]


_LOCK = threading.Lock()  # one forward pass at a time: the app searches from worker threads


def _features(out: object) -> object:
    """transformers 5 returns a model output whose pooled output is the projected embedding;
    earlier versions returned the tensor itself."""
    return getattr(out, "pooler_output", out)


def _normalised(features: object) -> np.ndarray:
    import numpy as np

    arr = np.asarray(features.detach().float().numpy(), dtype=np.float32)  # type: ignore[attr-defined]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.maximum(norms, 1e-12)


def _stack(parts: list[np.ndarray], dim: int) -> np.ndarray:
    import numpy as np

    return np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)


@lru_cache(maxsize=2)
def load_clip(folder: Path) -> ClipEmbedder:
    return ClipEmbedder(folder)
