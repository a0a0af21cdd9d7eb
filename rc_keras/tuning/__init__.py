"""KerasTuner searches over beta (trained) and theta (swept after training).

- `make_objective` / `TuningObjective`: best accuracy within a mean spike time budget,
  or accuracy - lambda * mean spike fraction, as KerasTuner objectives to maximise.
- `RCHyperModel`: trains one model per trial and records its whole theta sweep.
- `run_search`: tuner, search (resumable, distributable), Pareto front, best model, plot.

Names load on first use (PEP 562): KerasTuner and TensorFlow are not imported by
``rc-keras --help``.
"""

from rc_keras import _lazy

# Public name -> the submodule that defines it.
_NAMES = {
    **dict.fromkeys(("CURVE_FILE", "RCHyperModel", "SearchSpace", "ThresholdSweepCallback",
                     "check_range", "check_thresholds"), "hypermodel"),
    **dict.fromkeys(("DEFAULT_THRESHOLDS", "METRIC_NAMES", "OBJECTIVES", "TuningObjective",
                     "make_objective", "parse_spike_time"), "objectives"),
    **dict.fromkeys(("NO_TRIAL_MET_BUDGET", "TUNERS", "format_front", "is_worker", "make_tuner",
                     "pareto_front", "plot_search", "report", "run_search", "trial_records"),
                    "search"),
}

__all__ = ["CURVE_FILE", "DEFAULT_THRESHOLDS", "METRIC_NAMES", "NO_TRIAL_MET_BUDGET",
           "OBJECTIVES", "TUNERS", "RCHyperModel", "SearchSpace", "ThresholdSweepCallback",
           "TuningObjective", "check_range", "check_thresholds", "format_front", "is_worker",
           "make_objective", "make_tuner", "pareto_front", "parse_spike_time", "plot_search",
           "report", "run_search", "trial_records"]


__getattr__, __dir__ = _lazy.attach(__name__, _NAMES)
