"""Measuring loaders: reaches training only through training.loop, the step it times.

measure (time to the first batch, steady throughput, step costs), verdict (comparisons in words from repeats),
sweep (settings timed in turns within each repeat: median, min, max and a verdict; every sweep below calls it),
tables (format, write and read rows; each table's columns live beside its rows), bench and ceilings (the num_workers sweep, its settings in one BenchOptions; one core, the model's own step),
breakdown (where a worker's time goes), ladder (blog to fast, one change at a time), epoch_times (the blog's table),
threads (thread workers), timeline (who made each batch, when),
memory (USS, PSS, worker pids, /dev/shm), copy_on_read (the memory lab), peers (torchdata nodes, SPDL, DALI),
profile (a user's own DataLoader), culprits (dataset attributes that copy into every worker), probes (what profile
puts in each worker beyond helpers.loading.stalls' stacks and indices in hand: the dataset walk).
"""
