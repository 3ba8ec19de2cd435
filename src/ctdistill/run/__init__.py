"""The machinery of one run: the recipe (pipeline), its stage plan, the stages' work, resume
bookkeeping, the run folder, the run's data steps and the Ray executor.
"""
