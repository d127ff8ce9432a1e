"""ftctl: Terraform for fine-tuning."""

__version__ = "0.1.0"
