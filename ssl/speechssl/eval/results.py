"""One table from many evaluations.

Every evaluation writes ``results.json`` with a ``task`` key; a recipe keeps them as
``exp/<features>/eval/<column>/results.json``, where ``<features>`` is the row (fbank, mfcc,
apc, ...) and ``<column>`` names the evaluation (``samediff_dtw``, ``sv_cosine``,
``probe_phone``, or e.g. ``samediff_dtw_val`` when a task runs on several sets).  The task
decides which number is shown and whether higher is better.

``results.json`` is written after every other output of a run (:func:`write_results`), so
its presence means the run finished; a run first removes the previous run's outputs
(:func:`remove_outputs`, and the step scripts before their checks), so a run that fails
leaves no earlier result to be gathered as if it were current.

Cells show the 95% speaker-bootstrap interval a results.json carries under
``<metric>_ci`` (:mod:`speechssl.eval.bootstrap`); a column's best value is bold, and so is
every value whose interval overlaps the best one's: the data cannot tell those apart.

>>> TASKS["sv_cosine"].metric, TASKS["sv_cosine"].higher_is_better
('eer', False)
>>> format_cell({"ap_mean": 0.41234, "ap_std": 0.0123}, TASKS["awe"])
'0.412 ± 0.012'
>>> format_cell({"eer": 11.031, "eer_ci": [7.52, 15.3]}, TASKS["sv_cosine"])
'11.03 [7.52, 15.30]'
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from speechssl.errors import InputError
from speechssl.fileio import atomic_write


@dataclass(frozen=True)
class Task:
    metric: str                  # the results.json key shown in the table
    title: str                   # column heading and chart label
    higher_is_better: bool
    digits: int                  # decimals shown
    spread: str | None = None    # a key shown as "± value" (standard deviation over seeds)


TASKS = {
    "samediff_dtw": Task("ap", "same-different AP (DTW)", True, 3),
    "samediff_downsample": Task("ap", "same-different AP (downsampled)", True, 3),
    "awe": Task("ap_mean", "AWE AP (CAE-RNN)", True, 3, spread="ap_std"),
    "sv_cosine": Task("eer", "SV EER % (cosine)", False, 2),
    "sv_plda": Task("eer", "SV EER % (PLDA)", False, 2),
    "probe_phone": Task("accuracy", "phone probe acc. %", True, 1),
    "probe_speaker": Task("accuracy", "speaker probe acc. %", True, 1),
    "probe_language": Task("accuracy", "language probe acc. %", True, 1),
    "lid_cosine": Task("min_cavg", "LID min Cavg ×100 (cosine)", False, 2),
    "lid_linear": Task("min_cavg", "LID min Cavg ×100 (linear)", False, 2),
    "asr_gmm": Task("wer", "ASR WER % (mono GMM)", False, 1),
    "asr": Task("wer", "ASR WER % (hybrid DNN)", False, 1),
}


RESULTS = "results.json"


def remove_outputs(out_dir: str | Path, others: Sequence[str] = ()) -> None:
    """Start of a run: remove ``results.json``, then the previous run's ``others``, so that
    a run that fails leaves no earlier result looking current."""
    for name in (RESULTS, *others):
        (Path(out_dir) / name).unlink(missing_ok=True)


def write_results(out_dir: str | Path, results: dict) -> Path:
    """``<out_dir>/results.json``, atomically; write it after every other output of the
    run, since its presence is what marks the run finished."""
    path = Path(out_dir) / RESULTS
    with atomic_write(path) as f:
        f.write(json.dumps(results, indent=2) + "\n")
    return path


@dataclass(frozen=True)
class Result:
    row: str
    column: str
    task: str
    values: dict
    path: Path

    @property
    def value(self) -> float:
        return float(self.values[TASKS[self.task].metric])

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% interval, if the results have a well-formed one."""
        ci = self.values.get(f"{TASKS[self.task].metric}_ci")
        if (isinstance(ci, list) and len(ci) == 2
                and all(isinstance(x, (int, float)) and math.isfinite(x) for x in ci)):
            return float(ci[0]), float(ci[1])
        return None


def read_result(path: Path, row: str, column: str) -> Result:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read results: {e}", path=path) from None
    task = values.get("task") if isinstance(values, dict) else None
    if task not in TASKS:
        raise InputError(f"results have task {task!r}; known tasks: {', '.join(TASKS)}",
                         path=path, key="task")
    metric = TASKS[task].metric
    value = values.get(metric)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"results of task '{task}' need a finite number under '{metric}', "
                         f"got {value!r}", path=path, key=metric)
    return Result(row, column, task, values, path)


def find_results(exp_dir: Path) -> list[Result]:
    """Every ``<exp_dir>/<row>/eval/<column>/results.json``, sorted by row then column."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise InputError("no such experiment directory", path=exp_dir)
    return [read_result(p, row=p.parents[2].name, column=p.parent.name)
            for p in sorted(exp_dir.glob("*/eval/*/results.json"))]


def order(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
    """``preferred`` names first, in that order, then the rest sorted."""
    names = set(names)
    return [n for n in preferred if n in names] + sorted(names - set(preferred))


@dataclass
class ResultsTable:
    rows: list[str]
    columns: list[str]
    tasks: dict[str, str]                   # column -> task name
    cells: dict[tuple[str, str], Result]    # (row, column) -> result

    @classmethod
    def build(cls, results: Iterable[Result], rows: Sequence[str] = (),
              columns: Sequence[str] = ()) -> ResultsTable:
        cells: dict[tuple[str, str], Result] = {}
        tasks: dict[str, str] = {}
        for r in results:
            if tasks.setdefault(r.column, r.task) != r.task:
                raise InputError(f"column '{r.column}' mixes tasks '{tasks[r.column]}' and "
                                 f"'{r.task}'", path=r.path, key="task")
            cells[r.row, r.column] = r
        if columns:
            column_order = order(tasks, columns)
        else:  # in the order of TASKS, then by name
            task_rank = {name: i for i, name in enumerate(TASKS)}
            column_order = sorted(tasks, key=lambda c: (task_rank[tasks[c]], c))
        return cls(order((r for r, _ in cells), rows), column_order, tasks, cells)

    def task(self, column: str) -> Task:
        return TASKS[self.tasks[column]]

    def best(self, column: str) -> str | None:
        """The row with the best value in a column (ties: the first in row order)."""
        task = self.task(column)
        present = [(self.cells[row, column].value, i, row) for i, row in enumerate(self.rows)
                   if (row, column) in self.cells]
        if not present:
            return None
        sign = -1 if task.higher_is_better else 1
        return min(present, key=lambda x: (sign * x[0], x[1]))[2]

    def bold(self, column: str) -> set[str]:
        """The best row and every row whose interval overlaps the best one's."""
        best = self.best(column)
        if best is None:
            return set()
        rows = {best}
        best_ci = self.cells[best, column].interval
        if best_ci is not None:
            for row in self.rows:
                ci = self.cells[row, column].interval if (row, column) in self.cells else None
                if ci is not None and ci[0] <= best_ci[1] and best_ci[0] <= ci[1]:
                    rows.add(row)
        return rows

    def heading(self, column: str) -> str:
        task = self.task(column)
        arrow = "↑" if task.higher_is_better else "↓"
        where = "" if column == self.tasks[column] else f" [{column}]"
        return f"{task.title} {arrow}{where}"

    def markdown(self) -> str:
        """A GitHub table; in bold, the best value of each column and those whose interval
        overlaps the best one's; '-' where not evaluated."""
        head = ["features"] + [self.heading(c) for c in self.columns]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        bold = {c: self.bold(c) for c in self.columns}
        for row in self.rows:
            cells = [row]
            for c in self.columns:
                r = self.cells.get((row, c))
                text = "-" if r is None else format_cell(r.values, TASKS[r.task])
                cells.append(f"**{text}**" if row in bold[c] else text)
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        return {"rows": self.rows, "columns": self.columns,
                "tasks": {c: {"task": self.tasks[c], "metric": self.task(c).metric,
                              "higher_is_better": self.task(c).higher_is_better,
                              "best": self.best(c),
                              "not_separable_from_best": sorted(self.bold(c) - {self.best(c)})}
                          for c in self.columns},
                "results": {row: {c: self.cells[row, c].values for c in self.columns
                                  if (row, c) in self.cells} for row in self.rows}}


def format_cell(values: dict, task: Task) -> str:
    text = f"{values[task.metric]:.{task.digits}f}"
    if task.spread and isinstance(values.get(task.spread), (int, float)):
        text += f" ± {values[task.spread]:.{task.digits}f}"
    ci = values.get(f"{task.metric}_ci")
    if isinstance(ci, list) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
        text += f" [{ci[0]:.{task.digits}f}, {ci[1]:.{task.digits}f}]"
    return text


def plot_column(table: ResultsTable, column: str, path: Path) -> None:
    """A horizontal bar per feature set with its 95% interval, the best one highlighted
    and those not separable from it (:meth:`ResultsTable.bold`) lighter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task = table.task(column)
    rows = [r for r in table.rows if (r, column) in table.cells]
    values = [table.cells[r, column].value for r in rows]
    intervals = [table.cells[r, column].interval or (v, v) for r, v in zip(rows, values,
                                                                            strict=True)]
    # A percentile interval need not contain its value: clip the bars at the value.
    errors = [[max(v - lo, 0.0) for v, (lo, _) in zip(values, intervals, strict=True)],
              [max(hi - v, 0.0) for v, (_, hi) in zip(values, intervals, strict=True)]]
    best, bold = table.best(column), table.bold(column)
    fig, ax = plt.subplots(figsize=(5.5, 0.45 * len(rows) + 1.2))
    y = range(len(rows))
    ax.barh(y, values, xerr=errors, capsize=3,
            color=["C3" if r == best else "salmon" if r in bold else "C0" for r in rows])
    for i, (v, (_, hi)) in enumerate(zip(values, intervals, strict=True)):
        ax.text(max(v, hi), i, f"  {v:.{task.digits}f}", va="center", fontsize=8)
    ax.set_yticks(list(y))
    ax.set_yticklabels(rows)
    ax.invert_yaxis()
    ax.set_xlabel(f"{task.title} ({'higher' if task.higher_is_better else 'lower'} is "
                  "better; 95% interval)")
    ax.set_title(column)
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_table(table: ResultsTable, out_dir: Path, charts: bool = True) -> list[Path]:
    """results.md, results.json and one <column>.png per column under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "results.md", out_dir / "results.json"]
    with atomic_write(written[0]) as f:
        f.write(table.markdown())
    with atomic_write(written[1]) as f:
        f.write(json.dumps(table.to_json(), indent=2) + "\n")
    if charts:
        for column in table.columns:
            png = out_dir / f"{column}.png"
            tmp = out_dir / f".{column}.tmp.png"
            plot_column(table, column, tmp)
            tmp.replace(png)
            written.append(png)
    return written
