"""Helpers shared by the benchmarks: simulators in a subprocess, peak memory of a
process, the machine they ran on, and how figures are printed.

Only the standard library and what ``make install`` installs (no psutil): memory is
read from ``/proc/<pid>/status`` (Linux).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# Every benchmark prints one line starting with this, then a JSON object with all its
# figures, so that a script can collect them (``grep '^BENCH ' | cut -c7-``).
JSON_PREFIX = "BENCH "


def gateway_command() -> list[str]:
    """How to run the ``gateway`` command of the interpreter running the benchmark.

    The project's sources are compiled to bytecode first, as ``pip install`` of a wheel does: with
    ``PYTHONDONTWRITEBYTECODE`` set (as on this project's machines) an editable install never writes
    ``__pycache__``, and every measured start would compile the whole package again (about 13% of
    the instructions of importing the CLI, counted by callgrind)."""
    import compileall

    for package in ("gateway", "adapters"):
        compileall.compile_dir(REPO / package, quiet=1)
    script = Path(sys.executable).parent / "gateway"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]


# -- simulators in a subprocess ---------------------------------------------------------------


@dataclass
class SimProcess:
    """A simulator served by ``bench/_simserver.py`` in a process of its own (so that its
    memory and CPU are not the measured process's), up and serving; it answers
    :meth:`counts` without counting a request."""

    name: str
    proc: subprocess.Popen[str]
    url: str
    environ: dict[str, str]  # its credentials (the demo config's environment variables)
    started_in: float  # seconds until "ready:"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ask(self, line: str) -> Any:
        """Send one command of ``bench/_simserver.py``; its answer, decoded."""
        return self._ask(line, line.split(" ", 1)[0])

    def _ask(self, line: str, answer: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply.startswith(answer + ": "):
            raise RuntimeError(f"simulator {self.name} answered {reply!r} to {line!r}")
        return json.loads(reply[len(answer) + 2 :])

    def counts(self) -> dict[str, Any]:
        """The simulator's own ``counts()``: requests by route, its world's counts."""
        return self._ask("counts", "counts")

    def faults(self, **settings: Any) -> dict[str, Any]:
        return self._ask("faults " + json.dumps(settings), "faults")

    def preload(self, n: int, at: datetime | None = None) -> dict[str, list[Any]]:
        """``sp4n``: n complaints at the hub, as if created by the gateway:
        ``{"ids": [...], "first_logs": [...]}``."""
        return self._ask(f"preload {n}" + (f" {at.isoformat()}" if at else ""), "preload")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("exit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulator(
    name: str,
    *,
    seed: int = 1,
    options: dict[str, Any] | None = None,
    faults: dict[str, Any] | None = None,
    timeout: float = 180.0,
) -> SimProcess:
    """Start one simulator (``lapor_hendi``, ``sp4n``) on a free loopback port, its clock
    standing still and its simulated people idle, and wait until it serves."""
    command = [
        sys.executable,
        str(Path(__file__).resolve().parent / "_simserver.py"),
        name,
        "--seed",
        str(seed),
        "--options",
        json.dumps(options or {}),
        "--faults",
        json.dumps(faults or {}),
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, cwd=REPO)
    url, environ = "", {}
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            proc.wait()
            raise RuntimeError(f"simulator {name} exited ({proc.returncode}) before it was ready")
        if line.startswith("url: "):
            url = line[5:].strip()
        elif line.startswith("env: "):
            environ = json.loads(line[5:])
        elif line.startswith("ready:"):
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"simulator {name} was not ready in time")
    return SimProcess(name, proc, url, environ, time.perf_counter() - started)


# -- memory -----------------------------------------------------------------------------------


def proc_status_kb(pid: int, key: str) -> int | None:
    """A ``kB`` value of ``/proc/<pid>/status`` (``VmHWM``: peak resident set, ``VmRSS``: now)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


class PeakMemory:
    """Samples a process's ``VmHWM`` (peak RSS as the kernel counts it) every ``every``
    seconds until stopped; the last reading before the process exits is its peak."""

    def __init__(self, pid: int, every: float = 0.05):
        self.pid = pid
        self.every = every
        self.peak_kb = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = proc_status_kb(self.pid, "VmHWM")
            if value is None:
                return
            self.peak_kb = max(self.peak_kb, value)
            self.samples += 1
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024


def run_measured(
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stderr_path: Path | None = None,
    echo_prefix: str | None = "    | ",
) -> tuple[int, float, float, list[tuple[float, str]], float]:
    """Run ``command`` to its end; return (exit code, wall seconds, peak RSS in MB, standard
    output lines with the second each arrived, CPU seconds: user + system). Standard error goes to ``stderr_path`` (the gateway's log lines), or
    with standard output. The peak is the larger of the polled ``VmHWM`` and ``ru_maxrss``
    of the waited-for child (the latter covers a peak between two polls)."""
    started = time.perf_counter()
    stderr_file = open(stderr_path, "w") if stderr_path is not None else None
    try:
        proc = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=stderr_file if stderr_file is not None else subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=env,
            cwd=cwd,
        )
    finally:
        if stderr_file is not None:
            stderr_file.close()
    lines: list[tuple[float, str]] = []
    with PeakMemory(proc.pid) as peak:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.perf_counter() - started, line.rstrip("\n")))
            if echo_prefix is not None:
                print(echo_prefix + line.rstrip("\n"), flush=True)
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would add up every child so far)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    peak_mb = max(peak.peak_mb, usage.ru_maxrss / 1024)
    return proc.returncode, wall, peak_mb, lines, usage.ru_utime + usage.ru_stime


# -- the machine and the output ---------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gb": mem_gb,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "sqlite": _sqlite_version(),
    }


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def print_machine() -> dict[str, Any]:
    m = machine()
    print(
        f"machine: {m['nproc']} CPU ({m['cpu']}), {m['mem_gb']} GB, {m['machine']}, Linux {m['kernel']}, "
        f"Python {m['python']}, SQLite {m['sqlite']}; {m['date']}",
        flush=True,
    )
    return m


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, numbers right-aligned."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return "-" if v is None else str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) for i in range(len(headers))]

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    lines = [fmt([str(h) for h in headers]), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells]
    return "\n".join(lines)


def emit(name: str, figures: dict[str, Any], json_out: str | None = None) -> None:
    """The machine-readable result: one ``BENCH {...}`` line, and the same JSON in a file."""
    record = {"benchmark": name, **figures}
    text = json.dumps(record, default=str, sort_keys=False)
    print(JSON_PREFIX + text, flush=True)
    if json_out:
        Path(json_out).write_text(json.dumps(record, default=str, indent=2) + "\n")


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def goal(ok: bool) -> str:
    return "met" if ok else "MISSED"
