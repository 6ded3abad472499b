"""Operator output: one line per step with outcome and time, tables, JSON. Colour only on a TTY."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from staging_ops.jsondoc import JSONObject

_COLOURS = {"ok": "32", "changed": "33", "failed": "31", "skipped": "36", "warn": "33"}


def use_colour(stream: TextIO = sys.stdout) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def paint(text: str, outcome: str, stream: TextIO = sys.stdout) -> str:
    code = _COLOURS.get(outcome)
    return f"\033[{code}m{text}\033[0m" if code and use_colour(stream) else text


def step_line(name: str, outcome: str, seconds: float, detail: str = "") -> str:
    tail = f"  {detail}" if detail else ""
    return f"  {paint(f'{outcome:<8}', outcome)} {name:<44} {seconds:6.2f}s{tail}"


@dataclass
class StepRecord:
    """One step of a run as printed: its name, outcome ("ok", "changed", "warn", "failed",
    ...), the line's detail and how long it took."""

    step: str
    outcome: str = "ok"
    detail: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    def as_json(self) -> JSONObject:
        return {
            "step": self.step,
            "outcome": self.outcome,
            "detail": self.detail,
            "seconds": self.seconds,
        }


@dataclass
class StepLog:
    """Collects the steps of one run, printing each as it ends (unless quiet, e.g. --json)."""

    quiet: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    steps: list[StepRecord] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[StepRecord]:
        """Times a block; the block may set the record's outcome and detail."""
        record = StepRecord(name)
        start = time.monotonic()
        try:
            yield record
        except BaseException as exc:
            record.outcome = "failed"
            record.detail = record.detail or (str(exc).splitlines() or [""])[0]
            raise
        finally:
            record.seconds = round(time.monotonic() - start, 3)
            self.steps.append(record)
            self.emit(step_line(name, record.outcome, record.seconds, record.detail))

    def progress(self, line: str) -> None:
        """A line while a slow step waits (an Airflow start-up): printed, not kept as a step."""
        if not self.quiet:
            print(f"  {'…':<8} {line}", file=self.stream, flush=True)

    def emit(self, line: str) -> None:
        self.lines.append(line)
        if not self.quiet:
            print(line, file=self.stream, flush=True)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table; None prints as '-'."""
    cells = [[("-" if r.get(c) in (None, "") else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)
