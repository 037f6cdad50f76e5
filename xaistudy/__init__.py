"""xaistudy: a reproducible study book on evaluating explanations of medical-imaging models."""

__version__ = "0.1.0"
