"""The num_workers slider: a learner picks a value, the loader is timed right then, and the plot gains a point."""
from __future__ import annotations

from torch.utils.data import Dataset

from .plots import plot_worker_measurements
from ..machine import machine_summary, usable_cores
from ..timing.measure import StreamTiming, measure_loader


class NumWorkersExplorer:
    """A slider (measured on release, not while dragging), a line saying what was measured, and a live plot."""

    def __init__(self, dataset: Dataset, *, batch_size: int = 16, batches: int = 8, max_workers: int | None = None,
                 device: str = "cpu", initial: int = 0, seed: int = 0) -> None:
        import ipywidgets as widgets

        self.dataset, self.batch_size, self.batches, self.device, self.seed = dataset, batch_size, batches, device, seed
        self.measurements: dict[int, list[float]] = {}
        self.slider = widgets.IntSlider(value=initial, min=0, max=max_workers or max(4, 2 * usable_cores()),
                                        description="num_workers", continuous_update=False,
                                        style={"description_width": "initial"})
        self.status = widgets.HTML()
        self.plot = widgets.Output()
        self.widget = widgets.VBox([self.slider, self.status, self.plot])
        self.slider.observe(lambda change: self.measure(change["new"]), names="value")
        self.measure(initial)

    def measure(self, num_workers: int) -> StreamTiming:
        """Time a fresh loader with NUM_WORKERS workers: start-up apart, then steady images per second."""
        from IPython.display import clear_output, display

        self.status.value = f"measuring num_workers={num_workers} ..."
        timing, = measure_loader(self.dataset, num_workers, batch_size=self.batch_size, batches=self.batches,
                                 device=self.device, seed=self.seed)
        self.measurements.setdefault(num_workers, []).append(timing.images_per_s)
        count = sum(map(len, self.measurements.values()))
        self.status.value = (f"<b>num_workers={num_workers}: {timing.images_per_s:.0f} images/s</b> "
                             f"(worker start-up {timing.startup_s:.2f} s; "
                             f"{count} measurement{'s' if count > 1 else ''} so far)")
        fig = plot_worker_measurements(self.measurements, f"Loader throughput as you move the slider\n"
                                                          f"{machine_summary()}")
        with self.plot:
            clear_output(wait=True)
            display(fig)
        return timing

    def _repr_mimebundle_(self, **kwargs):
        """Shown as its widget when it ends a notebook cell."""
        return self.widget._repr_mimebundle_(**kwargs)
