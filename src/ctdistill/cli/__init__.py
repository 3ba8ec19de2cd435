"""The command line: the parser built from the configuration, and the commands.
"""
