"""Evaluation of explanations: localisation, faithfulness, perceptual and statistical tools."""
