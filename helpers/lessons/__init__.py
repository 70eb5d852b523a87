"""What the notebooks show: demos (start methods, main guard, pickling, seeding), hangs, zoo (the failure zoo),
widgets (the num_workers slider), show (a helper's own source); and every figure (plots, timeline_plot,
storage_plot), which the commands' --plot draws too. Nothing outside app/ imports lessons/, and timing/ draws nothing.
"""
