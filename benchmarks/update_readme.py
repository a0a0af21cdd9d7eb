"""Copies the markdown tables of benchmarks/results/ into benchmarks/results/README.md.

    python benchmarks/update_readme.py

The section lies between the markers ``<!-- results:start -->`` and
``<!-- results:end -->``; each benchmark's table goes under its own heading, in the
order of SECTIONS, so the results page always shows the committed figures. (The
project README keeps a short headline table that links there.)
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = [
    ("train_speed.md", "Training speed (`benchmarks/bench_train_speed.py`)"),
    ("kws_epoch_cost.md", "Keyword epoch cost (`benchmarks/bench_kws_epoch_cost.py`)"),
    ("toy_tasks.md", "Toy tasks (`benchmarks/bench_toy_tasks.py`)"),
    ("deploy.md", "Deployment (`benchmarks/bench_deploy.py`)"),
    ("firmware.md", "Firmware on emulated Cortex-M (`benchmarks/bench_firmware.py`)"),
    ("spiking_two_sequence.md", "Spiking cell, 2-sequence problem (`benchmarks/bench_spiking.py`)"),
    ("spiking_keywords.md",
     "Spiking cell, synthesized keywords (`benchmarks/bench_spiking.py --task keywords`)"),
    ("kws.md", "Keyword spotting (`benchmarks/bench_kws.py`)"),
    ("features.md", "Feature pipeline (`benchmarks/bench_features.py`)"),
    ("temporal_mnist.md", "Temporally coded MNIST (`benchmarks/bench_temporal_mnist.py`)"),
    ("tuning.md", "Beta/theta search (`benchmarks/bench_tuning.py`)"),
    ("distribute.md", "MirroredStrategy scaling (`benchmarks/bench_distribute.py`)"),
]
START, END = "<!-- results:start -->", "<!-- results:end -->"


def results_section():
    parts = []
    for name, heading in SECTIONS:
        path = RESULTS / name
        if not path.exists():
            continue
        body = path.read_text().strip()
        # A results file may open with its own '# Title'; the README gives the heading.
        if body.startswith("# "):
            body = body.split("\n", 1)[1].strip()
        parts.append(f"### {heading}\n\n{body}")
    return "\n\n".join(parts)


def main():
    readme = RESULTS / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{results_section()}\n{END}{tail}")


if __name__ == "__main__":
    main()
