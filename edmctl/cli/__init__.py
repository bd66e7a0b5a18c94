"""The command line: thin commands over the library. Each module registers its commands on the app.

Command modules import torch and the heavy parts of the library inside the command functions, so that
`edmctl --help` stays fast.
"""
