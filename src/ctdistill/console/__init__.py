"""What the terminal shows: quiet library logs and progress bars.
"""
