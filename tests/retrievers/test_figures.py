"""Figures: images from PDFs (embedded and vector-drawn) and LaTeX projects (PNG, PDF, EPS), a
tiny CLIP built from CLIPConfig (random weights, nothing downloaded), caption search with the
real MiniLM model, real FAISS and Chroma stores, crash-safety, and bad images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from litlab.cli import main
from retrievers.index.figures import CAPTIONS, IMAGES
from retrievers.library import Library
from retrievers.records import Figure
from tests.clip import tiny_clip
from tests.papers import (
    figure_image,
    make_figures_pdf,
    make_latex_figures_tarball,
    png_bytes,
    write_tarball,
)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture
def figure_papers(tmp_path: Path) -> Path:
    folder = tmp_path / "papers"
    folder.mkdir()
    make_figures_pdf(folder / "attention.pdf")
    # the LaTeX project's samples figure is the same picture as the PDF's Figure 1
    make_latex_figures_tarball(folder / "diffusion.tar.gz",
                               png_bytes(figure_image((200, 40, 40))))
    return folder


def _figures(lib: Library) -> dict[str, Figure]:
    out = {}
    for p in lib.catalog.papers():
        for f in lib.catalog.figures_of(int(p.id or 0)):
            out[f.caption.split()[0]] = f
    return out


def test_clip_embeddings_are_batched_and_normalised(clip_dir: Path) -> None:
    from retrievers.index.clip import ClipEmbedder

    clip = ClipEmbedder(clip_dir, batch_size=4)
    images = [figure_image((20 * i, 100, 255 - 20 * i)) for i in range(10)]
    vectors = clip.embed_images(images)
    assert vectors.shape == (10, 16) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # batching does not change a vector: the third batch's image alone gives the same one
    assert np.allclose(clip.embed_images([images[9]])[0], vectors[9], atol=1e-5)
    texts = clip.embed_texts(["attention heatmap", "loss curve", "a diagram"])
    assert texts.shape == (3, 16)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_figures_from_pdf_and_latex_of_every_kind(figure_papers: Path, tmp_path: Path,
                                                  clip_dir: Path) -> None:
    lib = Library(tmp_path / "home", clip_model=str(clip_dir))
    report = lib.index_files([figure_papers])
    assert report.ok and len(report.added) == 2
    figures = _figures(lib)
    heatmap, bars = figures["Attention"], figures["Accuracy"]
    assert heatmap.label == "Figure 1" and heatmap.page == 1
    # the vector bar chart has no embedded image: it was cropped from the rendered page
    assert bars.image_path and bars.image_path.endswith(".png")
    from PIL import Image

    with Image.open(bars.image_path) as crop:
        assert 100 < crop.width < 700 and 60 < crop.height < 400  # the chart, not the page
    # LaTeX: PNG as it is, the PDF figure (named without extension) rendered to PNG, EPS
    # rendered by Ghostscript (or skipped with the reason where it is missing), and a figure
    # whose file is missing keeps its caption and says why it has no image.
    assert (figures["Samples"].image_path or "").endswith("samples.png")
    unet = figures["The"]
    assert (unet.image_path or "").endswith(".png") and not unet.skipped
    loss = figures["Training"]
    if shutil.which("gs"):
        assert (loss.image_path or "").endswith(".png") and not loss.skipped
    else:
        assert "Ghostscript" in (loss.skipped or "")
    assert "not found" in (figures["A"].skipped or "")
    assert figures["Samples"].label == "Figure 1" and unet.label == "Figure 2"

    # every usable image has a CLIP vector, every caption a caption vector
    assert lib.figures.store(IMAGES).ids() == lib.catalog.figure_ids(images=True)
    assert lib.figures.store(CAPTIONS).ids() == lib.catalog.figure_ids()
    assert len(lib.catalog.figure_ids(images=True)) == (5 if shutil.which("gs") else 4)
    # each image has its CLIP-sized copy (what an index run and --like decode)
    from retrievers.parsing.images import THUMB_SIDE, thumbnail_path

    for fid in lib.catalog.figure_ids(images=True):
        f = lib.catalog.figures_by_id([fid])[fid]
        with Image.open(thumbnail_path(lib.figures.thumbs, f.image_path or "")) as thumb:
            assert min(thumb.size) <= THUMB_SIDE


@pytest.mark.parametrize("store", ["faiss", "chroma"])
def test_figure_found_by_caption_by_image_and_by_text(figure_papers: Path, tmp_path: Path,
                                                      clip_dir: Path, store: str) -> None:
    lib = Library(tmp_path / "home", store=store, clip_model=str(clip_dir))
    lib.index_files([figure_papers])
    figures = _figures(lib)
    heatmap, samples = figures["Attention"], figures["Samples"]

    # caption search (BM25 + the real MiniLM): words the caption does not share
    hit = lib.search_figures("which plot shows where the attention of a layer goes", k=3)[0]
    assert hit.figure.id == heatmap.id
    assert hit.relevance is not None and hit.relevance > 0.3
    assert hit.paper.title == "Attention Maps and Scaling Curves"
    assert lib.search_figures("U-Net architecture", k=1)[0].figure.caption.startswith("The U-Net")

    # a figure found by its own image: the same picture in the other paper comes first, by
    # its CLIP image vector (cosine 1), and the figure asked about is not in its own results
    like = lib.search_figures(like=int(heatmap.id or 0), k=3)
    assert like[0].figure.id == samples.id
    assert like[0].ranks["image"] == 1 and like[0].image_score == pytest.approx(1.0, abs=1e-4)
    assert heatmap.id not in {h.figure.id for h in like}

    # a text query through CLIP's text encoder: a store whose vector for the bar chart is the
    # text's own CLIP vector finds it first by image, whatever the captions say
    bars = figures["Accuracy"]
    images = lib.figures.store(IMAGES)
    images.remove([int(bars.id or 0)])
    images.add([int(bars.id or 0)],
               lib.figures.clip().embed_texts(["red blue green"]))
    images.save()
    found = {h.figure.id: h for h in lib.search_figures("red blue green", k=5)}
    assert found[bars.id].ranks["image"] == 1
    assert found[bars.id].image_score == pytest.approx(1.0, abs=1e-4)
    lib.close()


def test_without_clip_figures_are_searched_by_caption_and_embedded_later(
        figure_papers: Path, tmp_path: Path, clip_dir: Path) -> None:
    lib = Library(tmp_path / "home")
    report = lib.index_files([figure_papers])
    (note,) = [n for src, n in report.notes if src == "figures"]
    assert "captions only" in note and "clip_model" in note and "rebuild --figures" in note
    assert lib.index_files([figure_papers]).notes == []  # said once, not on every run
    hit = lib.search_figures("attention heatmap", k=1)[0]
    assert hit.figure.caption.startswith("Attention heatmap") and "image" not in hit.ranks
    assert not lib.figures.clip_ready()

    lib = Library(tmp_path / "home", clip_model=str(clip_dir))  # the person sets clip_model
    lib.rebuild(figures=True)
    assert lib.figures.clip_ready()
    assert lib.figures.store(IMAGES).ids() == lib.catalog.figure_ids(images=True) != set()
    assert "image" in lib.search_figures("attention heatmap", k=1)[0].ranks


def test_figure_index_catches_up_after_a_crash_and_follows_removals(
        figure_papers: Path, tmp_path: Path, clip_dir: Path) -> None:
    home = tmp_path / "home"
    lib = Library(home, clip_model=str(clip_dir))
    lib.index_files([figure_papers])
    want_images, want_captions = (lib.catalog.figure_ids(images=True), lib.catalog.figure_ids())
    lib.close()
    # killed after the catalog committed, before the figure vectors were saved
    (home / "indexes" / "figure_images.index").unlink()
    (home / "indexes" / "figure_captions.index").unlink()
    lib = Library(home, clip_model=str(clip_dir))
    report = lib.index_files([figure_papers])
    assert sorted(report.unchanged) == sorted(str(p) for p in figure_papers.iterdir())
    assert lib.figures.store(IMAGES).ids() == want_images
    assert lib.figures.store(CAPTIONS).ids() == want_captions
    # a removed paper takes its figure vectors with it; a re-indexed one never reuses ids
    lib.remove(f"file:{(figure_papers / 'attention.pdf').resolve()}")
    left = lib.catalog.figure_ids()
    assert lib.figures.store(CAPTIONS).ids() == left and len(left) < len(want_captions)
    assert lib.figures.store(IMAGES).ids() == lib.catalog.figure_ids(images=True)
    lib.index_files([figure_papers])  # back again: new ids, so no stale vector can match
    assert min(lib.catalog.figure_ids() - left) > max(want_captions)
    assert lib.figures.store(IMAGES).ids() == lib.catalog.figure_ids(images=True)


def test_bad_images_are_skipped_with_their_reason_and_the_paper_indexed(
        tmp_path: Path, clip_dir: Path) -> None:
    import io

    from PIL import Image

    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")  # 400M pixels, a few KB
    files = {
        "main.tex": (r"\documentclass{article}\title{Broken Figures}\begin{document}"
                     r"\section{Intro} Text about figures that fail."
                     + "".join(r"\begin{figure}\includegraphics{" + name + r"}\caption{"
                               + cap + r"}\end{figure}" for name, cap in (
                                   ("corrupt.png", "Corrupt file."),
                                   ("bomb.png", "A decompression bomb."),
                                   ("tiny.png", "An icon."),
                                   ("vector.svg", "An SVG figure."),
                                   ("good.png", "A good figure.")))
                     + r"\end{document}").encode(),
        "corrupt.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
        "bomb.png": bomb.getvalue(),
        "tiny.png": png_bytes(Image.new("RGB", (8, 8), "red")),
        "vector.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        "good.png": png_bytes(figure_image((10, 200, 10))),
    }
    archive = write_tarball(tmp_path / "broken.tar.gz", files)
    home = tmp_path / "home"
    lib = Library(home, clip_model=str(clip_dir))
    report = lib.index_files([archive])
    assert report.ok and len(report.added) == 1
    reasons = {f.caption: f.skipped for f in lib.catalog.figures_of(1)}
    assert "not a readable image" in (reasons["Corrupt file."] or "")
    assert "decompression bomb" in (reasons["A decompression bomb."] or "")
    assert "too small" in (reasons["An icon."] or "")
    assert "unsupported image format .svg" in (reasons["An SVG figure."] or "")
    assert reasons["A good figure."] is None
    assert len(lib.figures.store(IMAGES).ids()) == 1
    assert lib.search("figures that fail", k=1)  # the paper's text is searchable
    lib.close()
    out = CliRunner().invoke(main, ["library", "show", "1"], env={"LITLAB_HOME": str(home)})
    assert out.exit_code == 0
    assert "image skipped: bomb.png" in out.output and "not a readable image" in out.output


def test_cli_search_figures_json_and_like(figure_papers: Path, tmp_path: Path) -> None:
    env = {"LITLAB_HOME": str(tmp_path / "home")}
    runner = CliRunner()
    assert runner.invoke(main, ["index", "files", str(figure_papers)], env=env).exit_code == 0
    out = runner.invoke(main, ["search", "--figures", "accuracy against model size", "--json",
                               "--k", "2"], env=env)
    assert out.exit_code == 0, out.output
    hits = json.loads(out.stdout)
    assert hits[0]["caption"].startswith("Accuracy as a function of model size")
    assert hits[0]["label"] == "Figure 2" and hits[0]["page"] == 1
    assert Path(hits[0]["image_path"]).is_file()
    out = runner.invoke(main, ["search", "--like", str(hits[0]["figure_id"])], env=env)
    assert out.exit_code == 0 and f"figure {hits[0]['figure_id']} " not in out.output
    assert "captions only" in out.stderr
    out = runner.invoke(main, ["search", "--like", "999"], env=env)
    assert out.exit_code == 1 and "no figure 999" in out.output
    assert len(out.output.strip().splitlines()) == 1
