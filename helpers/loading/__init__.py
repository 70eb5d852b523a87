"""The data side, the bottom floor: from files on disk to batches. Imports nothing from training, timing or app.

data (ImageDataset, reading files, skipping bad ones), sample_table (paths and labels as NumPy arrays), samples (the
generated set, $HELPERS_DATA_DIR), prepare and verify (a download into the layout; checking files), transforms (the
pipelines: blog, standard, fast, gpu), gpu_decode, splits, loaders (the DataLoader factory; Loaders: both splits, their pipelines and device), resume (each epoch's
order and per-image seeds for mid-epoch resume), stalls (when no batch comes: each worker's stack and the indices it
holds, the watchdog that notices; `train --stall-s` and `profile --stall-s`).
"""
