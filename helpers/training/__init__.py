"""Training the frozen ResNet18: no argparse and no plots (the command line is helpers.app, the figures helpers.lessons).

config (TrainConfig: every option, its help and check), model, checkpoint, loop (a step, an epoch, evaluation, each
epoch's seeding, the epoch line: the step helpers.timing times), fit (the loaders a config describes, and
single-process training on them), ddp (across processes under torchrun), features (the head on cached backbone
features). A trainer takes the Loaders it runs on; fit(config) alone makes them from the config.
"""
