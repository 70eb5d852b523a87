"""The same script with the guard: spawned workers import this file, but only the parent runs main()."""
import multiprocessing

import torch
from torch.utils.data import DataLoader, TensorDataset


def main() -> None:
    dataset = TensorDataset(torch.arange(8.0))
    loader = DataLoader(dataset, batch_size=4, num_workers=1, multiprocessing_context="spawn")
    print("batches:", [batch[0].tolist() for batch in loader])


if __name__ == "__main__":
    multiprocessing.freeze_support()  # a no-op except in a program frozen into an executable
    main()
