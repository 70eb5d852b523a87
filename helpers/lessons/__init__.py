"""What the notebooks show and nothing else imports: demos (start methods, main guard, pickling, seeding), hangs,
zoo (the failure zoo), widgets (the num_workers slider), plots and timeline_plot (every figure, described for nbval).
"""
