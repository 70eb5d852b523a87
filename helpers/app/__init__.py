"""The command line and its surroundings: cli (the one-line error boundary, the training options, the scripts' entry
points), commands (each command's options beside its action), notebooks and kernels (running the notebooks), lab
(JupyterLab), doctor (the machine check).
"""
