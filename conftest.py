"""Loaded by pytest before anything is collected, so notebook kernels started by nbval inherit this too."""
import os

os.environ["HELPERS_OFFLINE"] = "1"  # tests and CI never try to download ImageNet weights
