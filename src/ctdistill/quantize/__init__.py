"""Post-training quantization to LiteRT and the quantization safety gate.
"""
