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


def _sample_image():
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


def write_tarball(path: Path, files: dict[str, bytes]) -> Path:
    """A .tar.gz holding ``files`` (name -> bytes), as arXiv serves LaTeX sources."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def make_latex_tarball(path: Path) -> Path:
    files = {
        "main.tex": MAIN_TEX.encode(),
        "sections/results.tex": RESULTS_TEX.encode(),
        "figs/overview.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
    }
    return write_tarball(path, files)


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


# -- papers with figures of every kind (issue 13) ------------------------------------------
def figure_image(color: tuple[int, int, int], size: tuple[int, int] = (96, 64)):
    """A PIL image: a coloured field with a darker diagonal band, standing in for a plot."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, color)
    ImageDraw.Draw(img).line([(0, size[1]), (size[0], 0)], fill=(20, 20, 20), width=6)
    return img


BODY = ("We study how attention heads specialise during pretraining and report the",
        "effect of model scale on accuracy across the benchmark suites we consider here.")


def make_figures_pdf(path: Path) -> Path:
    """One page: body text, a raster figure (an embedded image above its caption), and a vector
    figure (bars drawn with lines, no image) above its caption; a second page holds text."""
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=letter)
    c.setTitle("Attention Maps and Scaling Curves")
    width, height = letter
    c.setFont("Helvetica", 10)
    c.drawString(72, height - 60, "Attention Maps and Scaling Curves")
    c.drawString(72, height - 90, "1 Introduction")
    for i, line in enumerate(BODY):
        c.drawString(72, height - 110 - 14 * i, line)
    c.drawImage(ImageReader(figure_image((200, 40, 40))), 72, height - 260, 144, 96)
    c.drawString(72, height - 280, "Figure 1: Attention heatmap of layer three over the input "
                                   "tokens.")
    for i, line in enumerate(BODY):
        c.drawString(72, height - 320 - 14 * i, line)
    c.setLineWidth(8)  # a bar chart drawn as vector graphics
    for i, h in enumerate((40, 70, 100, 130)):
        c.line(100 + 40 * i, height - 520, 100 + 40 * i, height - 520 + h)
    c.line(80, height - 522, 280, height - 522)
    c.drawString(72, height - 545, "Figure 2: Accuracy as a function of model size, drawn "
                                   "as bars.")
    for i, line in enumerate(BODY):
        c.drawString(72, height - 580 - 14 * i, line)
    c.showPage()
    c.setFont("Helvetica", 10)
    c.drawString(72, height - 90, "2 Results")
    for i, line in enumerate(BODY):
        c.drawString(72, height - 110 - 14 * i, line)
    c.save()
    return path


def _pdf_figure() -> bytes:
    """A one-page PDF holding only a drawing, as LaTeX projects include plots."""
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(200, 120))
    c.setFillColorRGB(0.1, 0.3, 0.9)
    c.rect(20, 20, 160, 80, fill=1)
    c.save()
    return buf.getvalue()


EPS_FIGURE = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 120 80
0.1 0.7 0.2 setrgbcolor
10 10 100 60 rectfill
showpage
%%EOF
"""

FIGURES_TEX = r"""
\documentclass{article}
\usepackage{graphicx}
\title{Diffusion Samples and Encoder Diagrams}
\begin{document}
\maketitle
\begin{abstract}
We show samples, an architecture diagram and a loss curve.
\end{abstract}
\section{Figures}
The encoder maps images to latents.
\begin{figure}
\includegraphics{figs/samples.png}
\caption{Samples drawn from the diffusion model after training.}
\label{fig:samples}
\end{figure}
\begin{figure}
\includegraphics{figs/architecture}
\caption{The U-Net architecture with skip connections.}
\end{figure}
\begin{figure}
\includegraphics{figs/loss.eps}
\caption{Training loss curve over steps.}
\end{figure}
\begin{figure}
\includegraphics{figs/missing.png}
\caption{A figure whose file the authors forgot.}
\end{figure}
\end{document}
"""


def make_latex_figures_tarball(path: Path, samples: bytes) -> Path:
    """A LaTeX project whose figures are a PNG, a PDF (found without its extension), an EPS,
    and one whose file is missing."""
    files = {"main.tex": FIGURES_TEX.encode(), "figs/samples.png": samples,
             "figs/architecture.pdf": _pdf_figure(), "figs/loss.eps": EPS_FIGURE}
    return write_tarball(path, files)


def png_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


LORA_ABSTRACT = [
    "An important paradigm of natural language processing consists of large-scale",
    "pre-training on general domain data and adaptation to particular tasks.",
    "We propose Low-Rank Adaptation, or LoRA, which freezes the pretrained model weights.",
]


def make_arxiv_pdf(path: Path, stamp: str = "arXiv:2106.09685v2 [cs.CL] 16 Oct 2021") -> Path:
    """A first page as arXiv serves it, with no PDF metadata: a big title, an author line with
    footnote marks, affiliations, an abstract, the stamp rotated in the left margin, and a
    table whose cells break words over lines ("settle-" / "ment") or draw them in pieces."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=letter)
    width, height = letter
    c.setFont("Helvetica-Bold", 17)
    c.drawCentredString(width / 2, height - 80, "LoRA: Low-Rank Adaptation of")
    c.drawCentredString(width / 2, height - 100, "Large Language Models")
    c.setFont("Helvetica", 11)
    c.drawCentredString(width / 2, height - 130, "Edward J. Hu\u2217 Yelong Shen\u2217 "
                        "Phillip Wallis and Zeyuan Allen-Zhu")
    c.drawCentredString(width / 2, height - 145, "Microsoft Corporation")
    c.drawCentredString(width / 2, height - 160, "{edwardhu, yeshe}@microsoft.com")
    c.drawCentredString(width / 2, height - 190, "Abstract")
    c.setFont("Helvetica", 10)
    for i, line in enumerate(LORA_ABSTRACT):
        c.drawString(90, height - 210 - 13 * i, line)
    c.drawString(90, height - 270, "Table 1: Outcomes of the cases.")
    # a narrow table cell: a word hyphenated at the cell's edge, and a word drawn in pieces
    c.drawString(90, height - 290, "The settle-")
    c.drawString(90, height - 302, "ment was")
    x = 90.0
    for piece in ("ini", "tially", " approved."):
        c.drawString(x, height - 314, piece)
        x += c.stringWidth(piece, "Helvetica", 10) + 0.3
    c.saveState()
    c.setFont("Times-Roman", 20)
    c.translate(30, height / 2 - 150)
    c.rotate(90)
    c.drawString(0, 0, stamp)
    c.restoreState()
    c.showPage()
    c.save()
    return path


def notes_library(factory: pytest.TempPathFactory, name: str, notes: dict[str, str]):
    """A library of Markdown notes (file name -> text), indexed in a home of its own."""
    from retrievers.library import Library

    folder = factory.mktemp(name)
    for file, text in notes.items():
        (folder / file).write_text(text)
    lib = Library(factory.mktemp(f"{name}-home"))
    assert lib.index_files([folder]).ok
    return lib


TOPIC_NOTES = {
    "lora.md": ("Low-Rank Adaptation", [
        "Low-rank adaptation freezes the pretrained weights of the model. It injects trainable "
        "rank decomposition matrices into every layer of the Transformer architecture. The "
        "number of trainable parameters falls by ten thousand times compared with full "
        "fine-tuning of the same model.",
        "The adapters add no inference latency because the learned matrices merge into the "
        "frozen weights after training. Merging is a single matrix addition for each adapted "
        "layer. Several adapters can share one base model and be swapped at serving time.",
        "On the GLUE benchmark the method matches full fine-tuning with a rank of eight. The "
        "authors report that the query and value projections benefit most from adaptation. "
        "Higher ranks gave no further gain in their experiments on these tasks.",
    ]),
    "mamba.md": ("Selective State Spaces", [
        "Selective state space models let the recurrence parameters depend on the input token. "
        "This selection mechanism lets the model forget irrelevant context and keep what "
        "matters. The resulting architecture is called Mamba by its authors.",
        "Mamba scales linearly with the sequence length, unlike attention which is quadratic. "
        "A hardware-aware parallel scan computes the recurrence efficiently on accelerators. "
        "Inference throughput is five times higher than a Transformer of similar size.",
        "On language modelling the three billion parameter model matches Transformers twice its "
        "size. Long sequences of a million tokens improve results on genomics data. Audio "
        "waveforms are modelled well by the same architecture.",
    ]),
    "rlhf.md": ("Learning from Human Feedback", [
        "A reward model is trained on human comparisons between two answers to one prompt. "
        "Labellers choose the answer they prefer and the model learns to score it higher. "
        "The comparisons were collected from contractors hired for the project.",
        "The policy is optimised with proximal policy optimisation against the reward model. "
        "A penalty on the divergence from the supervised model keeps the policy from drifting. "
        "Without the penalty the policy exploits weaknesses of the reward model.",
        "Human evaluators preferred the outputs of the small aligned model to those of a much "
        "larger pretrained model. Truthfulness improved while toxicity fell slightly. The "
        "aligned models still make simple mistakes on some instructions.",
    ]),
    "diffusion.md": ("Denoising Diffusion", [
        "Denoising diffusion models learn to reverse a gradual noising process over many "
        "steps. Each step removes a small amount of Gaussian noise predicted by a network. "
        "Sampling starts from pure noise and ends with an image.",
        "The noise prediction network is a U-Net with attention layers at low resolutions. "
        "Training minimises a simple mean squared error between true and predicted noise. "
        "A cosine schedule of the noise level improves sample quality.",
        "Classifier-free guidance trades diversity for fidelity by mixing conditional and "
        "unconditional predictions. Larger guidance weights give sharper images that follow "
        "the prompt more closely. Very large weights saturate the colours.",
    ]),
}


def _topic_note(title: str, sections: list[str]) -> str:
    return f"# {title}\n\n" + "\n\n".join(f"## Part {i + 1}\n\n{s}"
                                            for i, s in enumerate(sections))


def topic_notes(folder: Path) -> Path:
    """Four Markdown notes of three sections each, every section a passage of 30 words or more
    (enough for training pairs and a held-out paper): ``folder``, made."""
    folder.mkdir(parents=True, exist_ok=True)
    for file, (title, sections) in TOPIC_NOTES.items():
        (folder / file).write_text(_topic_note(title, sections))
    return folder


def prompt_suite(path: Path, questions: list[str], max_tokens: int) -> Path:
    """A suite of plain prompt cases (each answer must hold a word) at ``path``: the model
    answers every question as asked, nothing retrieved (two-server tests and bench/scale.py)."""
    cases = "\n".join(f'  - {{id: q{i}, question: "{q}"}}' for i, q in enumerate(questions))
    path.write_text(f"""\
description: plain prompts
targets:
  - {{name: base, kind: prompt, temperature: 0, max_tokens: {max_tokens}}}
prompts:
  - {{name: plain, user: "{{{{ question }}}}"}}
assert:
  - {{type: regex, value: "\\\\w"}}
cases:
{cases}
""")
    return path
