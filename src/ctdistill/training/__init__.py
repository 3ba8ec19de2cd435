"""Training: the recipe's optimiser pieces, the fit loop and teacher fine-tuning, and knowledge
distillation.
"""
