"""Papers made by the tests (shared by every package's tests): a two-column PDF, a LaTeX project with a figure, Markdown."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

LEFT = [
    "1 Introduction",
    "Low-rank adaptation freezes the pretrained",
    "weights and injects trainable rank decom-",
    "position matrices into each layer of the",
    "transformer, which reduces the number of",
    "trainable parameters by ten thousand times.",
]
RIGHT = [
    "2 Diffusion Models",
    "Denoising diffusion probabilistic models",
    "learn to reverse a gradual noising process",
    "and generate images by iterative denoising.",
    "Figure 1: Samples from the diffusion model.",
]


def _sample_image():  # type: ignore[no-untyped-def]
    """A 32x24 gradient, standing in for a plot."""
    from PIL import Image
    from reportlab.lib.utils import ImageReader

    img = Image.new("RGB", (32, 24))
    img.putdata([(8 * x, 10 * y, 128) for y in range(24) for x in range(32)])
    return ImageReader(img)


def make_two_column_pdf(path: Path) -> Path:
    """Page 1: title and a two-column body; page 2: a section about state-space models."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=letter)
    c.setTitle("Efficient Adaptation of Generative Models")
    width, height = letter
    c.setFont("Helvetica", 10)
    c.drawString(72, height - 60, "Efficient Adaptation of Generative Models")
    # Draw the right column first: reading order must not follow drawing order.
    for i, line in enumerate(RIGHT):
        c.drawString(width / 2 + 20, height - 120 - 14 * i, line)
    for i, line in enumerate(LEFT):
        c.drawString(60, height - 120 - 14 * i, line)
    c.drawImage(_sample_image(), width / 2 + 20, height - 300, 120, 90)  # above its caption
    c.showPage()
    c.setFont("Helvetica", 10)
    c.drawString(60, height - 100, "3 State Space Models")
    c.drawString(60, height - 114, "Selective state space models such as Mamba scale")
    c.drawString(60, height - 128, "linearly with sequence length, unlike attention.")
    c.save()
    return path


MAIN_TEX = r"""
\documentclass{article}
\usepackage{graphicx}
\title{Contrastive Language-Image Pretraining at Small Scale}
\begin{document}
\maketitle
\begin{abstract}
We align images and text with a contrastive objective.
\end{abstract}
\section{Method}
% a comment that must not be indexed: SECRETCOMMENT
We train an image encoder and a text encoder jointly so that matching pairs have high
cosine similarity, with loss $\mathcal{L} = -\log \frac{e^{s_{ii}/\tau}}{\sum_j e^{s_{ij}/\tau}}$.
\input{sections/results}
\end{document}
"""

RESULTS_TEX = r"""
\section{Results}
Zero-shot classification on held-out labels reaches strong accuracy.
\begin{figure}[t]
\centering
\includegraphics[width=\linewidth]{figs/overview.png}
\caption{Overview of contrastive pretraining with paired captions.}
\label{fig:overview}
\end{figure}
"""


def make_latex_tarball(path: Path) -> Path:
    files = {
        "main.tex": MAIN_TEX.encode(),
        "sections/results.tex": RESULTS_TEX.encode(),
        "figs/overview.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


MARKDOWN = """# Reinforcement Learning from Human Feedback

## Reward Models
A reward model is trained on human preference comparisons between two answers.

## Policy Optimisation
The policy is optimised with PPO against the reward model, with a KL penalty.
"""


@pytest.fixture
def papers_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "papers"
    folder.mkdir()
    make_two_column_pdf(folder / "adaptation.pdf")
    make_latex_tarball(folder / "clip-small.tar.gz")
    (folder / "rlhf.md").write_text(MARKDOWN)
    return folder
