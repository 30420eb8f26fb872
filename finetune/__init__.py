"""litlab: finetune."""
