"""Figure embedding throughput and figure-search latency.

(a) Images per second of litlab's figure embedding (what an index run does per figure: open
    and check the PNG, decode it, the CLIP processor, the forward pass, normalise) against the
    bare CLIP forward pass on the same batch already preprocessed (the floor), in one run, on a
    ViT-B/32-sized CLIP (CLIPConfig's defaults; random weights: speed does not depend on their
    values, and no CLIP weights are on PyPI). Goal: ratio at least 0.8.
(b) Figure-search latency at 10k and 100k figures: ``Library.search_figures`` (caption BM25
    over FTS5, caption vectors, CLIP text -> image vectors, fusion, catalog lookups), against
    the floor of a brute-force numpy cosine over the same image vectors. Figures are real
    catalog rows with made-up captions; their vectors are synthetic (clustered unit vectors).

    .venv/bin/python bench/figures.py [--images 64] [--sizes 10000,100000] [--smoke]

Writes bench/results/figures.json.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from common import arguments, clustered_vectors, library, percentile, sentence, write

QUERIES = 50


def base_clip(folder: Path) -> Path:
    """A ViT-B/32-sized CLIP checkpoint with random weights, saved like a hub checkpoint."""
    from transformers import CLIPConfig, CLIPModel

    from tests.clip import tiny_clip

    tiny_clip(folder)  # tokenizer and processor files (the processor at 224 px below)
    config = CLIPConfig()
    text: Any = config.text_config
    text.vocab_size = 64
    text.eos_token_id, text.pad_token_id = 3, 0
    CLIPModel(config).save_pretrained(folder)
    from transformers import CLIPImageProcessorPil

    CLIPImageProcessorPil(size={"shortest_edge": 224},
                          crop_size={"height": 224, "width": 224}).save_pretrained(folder)
    return folder


def figure_files(folder: Path, n: int) -> list[Path]:
    """Plot-like PNGs the size a rendered PDF figure has (1600 x 1000)."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = Image.new("RGB", (1600, 1000), "white")
        d = ImageDraw.Draw(img)
        for _ in range(30):
            x, y = rng.integers(0, 1500, 2)
            d.line([(int(x), int(y)), (int(x) + 100, int(y) + 50)],
                   fill=tuple(int(c) for c in rng.integers(0, 255, 3)), width=4)
        path = folder / f"fig{i}.png"
        img.save(path)
        out.append(path)
    return out


def embedding_throughput(clip_dir: Path, n: int) -> dict[str, Any]:
    import torch

    from retrievers.index.clip import ClipEmbedder
    from retrievers.parsing.images import open_raster, prepare_figures, thumbnail_path
    from retrievers.records import Figure

    clip = ClipEmbedder(clip_dir)
    with tempfile.TemporaryDirectory() as tmp:
        files = figure_files(Path(tmp), n)
        clip.embed_images([open_raster(files[0])])  # warm up
        # indexing a paper checks each image (decoding it once) and keeps a CLIP-sized copy:
        # timed apart, it is parsing's share
        t = time.perf_counter()
        thumbs = Path(tmp) / "thumbs"
        figures = [Figure(caption="", image_path=str(f)) for f in files]
        prepare_figures(figures, Path(tmp) / "converted", thumbs)
        prepare_s = time.perf_counter() - t
        t = time.perf_counter()  # the embedding step of an index run (FigureIndex)
        done, vectors, failed = clip.embed_files(
            [thumbnail_path(thumbs, f.image_path or "") for f in figures])
        litlab_s = time.perf_counter() - t
        assert not failed and len(done) == n
        t = time.perf_counter()  # the same from the full-size files (no copies)
        clip.embed_files(files)
        full_s = time.perf_counter() - t
        pixels = [clip.pixels([open_raster(f) for f in files[i:i + clip.batch_size]])
                  for i in range(0, n, clip.batch_size)]
    t = time.perf_counter()
    with torch.inference_mode():
        for batch in pixels:  # the bare forward pass, same batches
            clip.model.get_image_features(pixel_values=batch)
    bare_s = time.perf_counter() - t
    assert vectors.shape[0] == n
    out = {"images": n, "batch": clip.batch_size, "litlab_images_per_s": round(n / litlab_s, 2),
           "bare_forward_images_per_s": round(n / bare_s, 2),
           "ratio": round(bare_s / litlab_s, 3),
           "from_full_size_images_per_s": round(n / full_s, 2),
           "ratio_from_full_size": round(bare_s / full_s, 3),
           "prepare_ms_per_image": round(1000 * prepare_s / n, 1)}
    print(f"(a) figure embedding: litlab {out['litlab_images_per_s']} images/s, bare forward "
          f"{out['bare_forward_images_per_s']} images/s, ratio {out['ratio']} (goal >= 0.8); "
          f"from the full-size files {out['ratio_from_full_size']}; checking each image and "
          f"keeping its copy at indexing {out['prepare_ms_per_image']} ms an image")
    return out


def search_latency(clip_dir: Path, size: int) -> dict[str, Any]:
    import numpy as np

    from retrievers.index.figures import CAPTIONS, IMAGES
    from retrievers.records import Figure, Paper

    rng = np.random.default_rng(size)
    with tempfile.TemporaryDirectory() as tmp:
        lib = library(Path(tmp), clip_model=str(clip_dir))
        per_paper = 20
        for p in range(size // per_paper):
            lib.catalog.put_paper(
                Paper(key=f"file:{p}", title=sentence(rng, 8)), [], [],
                [Figure(caption=sentence(rng, 16), label=f"Figure {i + 1}", page=1,
                        image_path=f"/nonexistent/{p}-{i}.png") for i in range(per_paper)])
        ids = sorted(lib.catalog.figure_ids())
        captions = clustered_vectors(len(ids), 384, seed=1)
        images = clustered_vectors(len(ids), lib.figures.clip().dim, seed=2)
        for name, vectors in ((CAPTIONS, captions), (IMAGES, images)):
            store = lib.figures.store(name)
            store.add(ids, vectors)
            store.save()
        lib.figures.record(CAPTIONS, lib.embed_model)
        lib.figures.record(IMAGES, str(clip_dir))
        assert lib.figures.clip_ready()
        queries = [sentence(rng, 6) for _ in range(QUERIES)]
        lib.search_figures(queries[0], 5)  # load the models
        times = []
        for q in queries:
            t = time.perf_counter()
            lib.search_figures(q, 5)
            times.append(1000 * (time.perf_counter() - t))
        floor = []
        clip = lib.figures.clip()
        for q in queries:  # the floor: CLIP's text encoder and a brute-force cosine
            t = time.perf_counter()
            scores = images @ clip.embed_query(q)
            np.argpartition(-scores, 5)[:5]
            floor.append(1000 * (time.perf_counter() - t))
        lib.close()
    out = {"figures": len(ids), "litlab_p50_ms": round(percentile(times, 50), 2),
           "litlab_p99_ms": round(percentile(times, 99), 2),
           "floor_p50_ms": round(percentile(floor, 50), 2),
           "ratio_p50": round(percentile(times, 50) / percentile(floor, 50), 2)}
    print(f"(b) {len(ids)} figures: litlab search_figures p50 {out['litlab_p50_ms']} ms "
          f"(p99 {out['litlab_p99_ms']}), CLIP text + numpy cosine p50 {out['floor_p50_ms']} ms,"
          f" ratio {out['ratio_p50']}")
    return out


def main() -> None:
    ap = arguments(__doc__)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--sizes", default="10000,100000")
    args = ap.parse_args()
    if args.smoke:
        args.images, args.sizes = 2, "100"
    with tempfile.TemporaryDirectory() as tmp:
        clip_dir = base_clip(Path(tmp) / "clip-vit-b32-random")
        results: dict[str, Any] = {"clip": "ViT-B/32 shape (CLIPConfig defaults), random weights"}
        results["embedding"] = embedding_throughput(clip_dir, args.images)
        results["search"] = [search_latency(clip_dir, int(s)) for s in args.sizes.split(",")
                             if s]
    write("figures", results, args.smoke)


if __name__ == "__main__":
    main()
