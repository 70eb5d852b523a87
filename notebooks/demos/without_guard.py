"""Starts DataLoader workers at import time, with no `if __name__ == "__main__":` guard.

Under the spawn start method (the default on Windows and macOS) every worker imports this file again
before it can run, meets the DataLoader below, and tries to start workers of its own.
"""
import torch
from torch.utils.data import DataLoader, TensorDataset

dataset = TensorDataset(torch.arange(8.0))
loader = DataLoader(dataset, batch_size=4, num_workers=1, multiprocessing_context="spawn")
print("batches:", [batch[0].tolist() for batch in loader])
