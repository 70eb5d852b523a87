"""A user's module that fails to import, for tests/test_profile.py."""
SETTINGS = {"root": "data"}
ROOT = SETTINGS["data_root"]  # the typo a user makes: a KeyError when profile imports this module
