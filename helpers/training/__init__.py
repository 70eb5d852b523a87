"""Training the frozen ResNet18: no argparse and no plots (the command line is helpers.app, the figures helpers.lessons).

config (TrainConfig: every option, its help and check), model, checkpoint, loop (a step, an epoch, evaluation, the
epoch line: the step helpers.timing times), fit (single-process training), ddp (across processes under torchrun),
features (the head on cached backbone features).
"""
