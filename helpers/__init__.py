"""The logic behind the DataLoader course's notebooks, in five parts; notebooks import from the parts by name.

At the top, the ground every part stands on: errors, files, options, machine, progress, processes.
loading/ (files to batches), training/ (the model and its loops), timing/ (measuring loaders), lessons/ (what the
notebooks show), app/ (the command line). Each part's docstring says what each of its modules holds.
"""
