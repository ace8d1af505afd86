"""Timing: a command, its baselines, and the rounds that run them back to back."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
MP = str(Path(sys.executable).parent / "migrationpilot")


@dataclass
class Command:
    """A process to time, with an untimed setup before and clean-up after each run."""

    argv: list[str] | Callable[[], list[str]]  # a callable: argv known only after setup
    stdin: Path | None = None
    setup: Callable[[], None] = lambda: None
    cleanup: Callable[[], None] = lambda: None

    def run(self) -> float:
        self.setup()
        argv = self.argv() if callable(self.argv) else self.argv
        stdin = self.stdin.open("rb") if self.stdin else subprocess.DEVNULL
        try:
            started = time.perf_counter()
            done = subprocess.run(
                argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            elapsed = time.perf_counter() - started
        finally:
            if self.stdin:
                stdin.close()  # type: ignore[union-attr]
        if done.returncode != 0:
            sys.exit(f"bench: {' '.join(argv)} failed: {done.stderr.decode().strip()}")
        self.cleanup()
        return elapsed


@dataclass
class Baseline:
    name: str  # the row of the table it makes
    command: Command
    label: str
    goal: str


@dataclass
class Case:
    """Our command and one or more baselines, each a row of the table. Every round runs all
    of them back to back, in a rotating order, so that none always follows another."""

    ours: Command
    ours_label: str
    baselines: list[Baseline]
    rows: int | None = None  # for throughput cases: rows written per run
    # The plan of the case's main statement, run once more after the timed rounds.
    explain: Callable[[], str] | None = None
    times: dict[str, list[float]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.baselines[0].name

    def measure(self, runs: int) -> None:
        sides = [("ours", self.ours), *((b.name, b.command) for b in self.baselines)]
        for _, command in sides:
            command.run()  # warm-up: caches, the server's buffers, Python's bytecode
        for round_number in range(runs):
            turn = round_number % len(sides)
            for side, command in sides[turn:] + sides[:turn]:
                self.times.setdefault(side, []).append(command.run())

    def results(self) -> list[dict[str, Any]]:
        ours = statistics.median(self.times["ours"])
        rows = []
        for baseline in self.baselines:
            theirs = statistics.median(self.times[baseline.name])
            rows.append(
                {
                    "case": baseline.name,
                    "ours": ours,
                    "baseline": theirs,
                    # Throughput cases: ours as a fraction of the baseline's rows per second.
                    "ratio": theirs / ours if self.rows else ours / theirs,
                    "goal": baseline.goal,
                    "ours_command": self.ours_label,
                    "baseline_command": baseline.label,
                    "rows": self.rows,
                    "runs": len(self.times["ours"]),
                }
            )
        return rows


def case(
    name: str,
    ours: Command,
    baseline: Command,
    ours_label: str,
    baseline_label: str,
    goal: str,
    rows: int | None = None,
) -> Case:
    """A case with a single baseline."""
    return Case(ours, ours_label, [Baseline(name, baseline, baseline_label, goal)], rows)


def scaled_goal(goal: str, size: int, stated_for: int, unit: str) -> str:
    """The issue states the write goals for one size; below it (SCALE=small, the CI smoke
    run) process start-up dominates and the row is only reported."""
    return goal if size >= stated_for else f"report (goal {goal} at {stated_for:,} {unit})"
