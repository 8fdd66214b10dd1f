"""The one pinned scorer: is a model completion's final answer equal to the gold answer?

Built on math-verify 0.9.0 (pinned in pyproject.toml). Rules, in order (documented in docs/benchmarks.md):

1. **Extraction** (:func:`extract_answer`, in-process, bounded time): the last *complete* ``\\boxed{...}``
   or ``\\fbox{...}`` (a box opened but never closed means no answer); else the text after the last
   GSM8K-style ``#### ``; else the last "answer is X" / "Answer: X" phrase; else the last number. Only the
   last ``SCAN_CHARS`` characters are scanned (answers come at the end) and an answer longer than
   ``MAX_ANSWER_CHARS`` counts as none.
   ``$`` signs are removed from answer and gold before comparing.
2. **Fast path**: answers equal after light normalisation (spaces, ``$``, ``\\!``, ``\\left``, ``\\dfrac``,
   a trailing period, thousands separators) are correct; two plain integers that differ are wrong.
3. **math-verify**: otherwise gold and answer are each wrapped in ``\\boxed{}``, parsed with math-verify
   (gold parsed once per process, ``lru_cache``) and compared with ``math_verify.verify``.

math-verify's own timeout uses ``signal.alarm`` (main thread only), so it is switched off here and the
timeout is enforced by running step 3 in worker processes that are killed when an answer overruns
(:class:`JudgePool`). That works from any thread and from worker processes; an answer that times out,
crashes the parser or cannot be decoded scores ``False``. Model output is only ever parsed, never executed.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import ctypes
import functools
import logging
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as _wait

from benchmarks import choice

DEFAULT_TIMEOUT = 5.0  # seconds per answer, as math-verify's own default
SCAN_CHARS = 100_000  # only the tail of a completion is scanned for an answer
MAX_ANSWER_CHARS = 1_000  # a longer "answer" is not an answer (and could stall sympy)
_BOX_LOOKBACK = 8  # at most this many trailing \boxed occurrences are tried (bounded work on junk)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BOX = re.compile(r"\\(?:boxed|fbox)\b")
_HASHES = re.compile(r"####[ \t]*([^\n]*)")
# a lookahead so overlapping phrases ("Final Answer: The final answer is X") all match; the last one wins
_ANSWER_IS = re.compile(rf"(?i)(?=answer\s*(?:is|:)\s*:?\s*([^\n]{{1,{MAX_ANSWER_CHARS}}}))")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_INT = re.compile(r"^[+-]?\d+$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")


# ----------------------------------------------------------------------------------------- extraction
def _clean(text) -> str | None:
    """Coerce to valid UTF-8 text without control characters (keep newlines/tabs); None stays None."""
    if text is None:
        return None
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise TypeError(f"completion must be str or bytes, got {type(text).__name__}")
    text = text[-SCAN_CHARS:]
    text = text.encode("utf-8", errors="replace").decode("utf-8")  # lone surrogates -> '?'
    return _CONTROL.sub(" ", text)


def _braced(text: str, start: int) -> str | None:
    """Content of the balanced ``{...}`` opening at ``text[start]``; None if unbalanced or too long."""
    depth = 0
    end = min(len(text), start + MAX_ANSWER_CHARS + 2)
    for i in range(start, end):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return None


def _last_boxed(text: str) -> str | None:
    starts = [m.end() for m in _BOX.finditer(text)][-_BOX_LOOKBACK:]
    for pos in reversed(starts):
        rest = text[pos : pos + MAX_ANSWER_CHARS + 2]
        stripped = rest.lstrip()
        if stripped.startswith("{"):
            inner = _braced(text, pos + len(rest) - len(stripped))
            if inner is not None:
                return inner
        elif rest[:1] == " " and stripped:  # "\boxed 5" form: one token
            return re.split(r"[\s$]", stripped, maxsplit=1)[0]
    return None


def _tidy(answer: str) -> str | None:
    if len(answer) > 4 * MAX_ANSWER_CHARS:  # checked first: keeps the stripping below cheap
        return None
    answer = answer.lstrip(" \t\n$").rstrip(" \t\n$.")
    if not answer or len(answer) > MAX_ANSWER_CHARS:
        return None
    return answer


def extract_answer(completion) -> str | None:
    """The final answer written in ``completion`` (str or bytes), or None. Never raises on content."""
    text = _clean(completion)
    if not text:
        return None
    boxed = _last_boxed(text)
    if boxed is not None:
        return _tidy(boxed)
    if _BOX.search(text):  # a box was opened but never closed: truncated output, no fallback guessing
        return None
    hashes = _HASHES.findall(text)
    if hashes and hashes[-1].strip():
        return _tidy(hashes[-1])
    phrases = _ANSWER_IS.findall(text)
    if phrases:
        phrase = re.split(r"\.\s|\. ?I hope", phrases[-1])[0]
        got = _tidy(phrase)
        if got:
            return got
    numbers = _NUMBER.findall(text)
    if numbers:
        return _tidy(numbers[-1].rstrip(","))
    return None


# ------------------------------------------------------------------------------------------- judging
def _norm(s: str) -> str:
    s = s.strip().strip("$")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\\left|\\right|\\!|\\,|\\;|\\ |\s+", "", s)
    s = s.rstrip(".")
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    return s


def _fast_compare(answer: str, gold: str) -> bool | None:
    """True/False when cheap rules decide, None when math-verify must."""
    a, g = _norm(answer), _norm(gold)
    if a and a == g:
        return True
    if _INT.match(a) and _INT.match(g) and len(a) < 4000 and len(g) < 4000:
        return int(a) == int(g)
    try:
        if len(a) < 64 and len(g) < 64 and Decimal(a) == Decimal(g):
            return True
    except (InvalidOperation, ValueError):
        pass
    return None


def _quiet_math_verify():
    import math_verify.grader  # lazy: start-up time
    import math_verify.parser

    # we enforce timeouts ourselves (worker processes); silence the "timeout disabled" warning
    math_verify.parser.TIMEOUT_WARNING_SHOWN = True
    math_verify.grader.TIMEOUT_WARNING_SHOWN = True
    logging.getLogger("math_verify").setLevel(logging.ERROR)


@functools.lru_cache(maxsize=65536)
def _parse_gold(gold: str):
    from math_verify import parse  # lazy: start-up time

    _quiet_math_verify()
    return parse("\\boxed{" + gold + "}", parsing_timeout=None)


def _strip_dollars(s: str) -> str:
    # math-mode delimiters are not part of an answer ("$69$,$84$" is an OlympiadBench gold)
    return s.replace("\\$", "").replace("$", "").strip()


def _verify_answer(answer: str | None, gold: str) -> bool:
    """Rules 2-3 for an already extracted answer. No timeout of its own: run it in a JudgePool."""
    if answer is None:
        return False
    answer, gold = _strip_dollars(answer), _strip_dollars(gold)
    if not answer or not gold:
        return False
    fast = _fast_compare(answer, gold)
    if fast is not None:
        return fast
    from math_verify import parse, verify  # lazy: start-up time

    _quiet_math_verify()
    try:
        g = _parse_gold(gold)
        p = parse("\\boxed{" + answer + "}", parsing_timeout=None)
        return bool(g) and bool(p) and bool(verify(g, p, timeout_seconds=None))
    except Exception:  # noqa: BLE001 - any parser failure means "not shown equal"
        return False


def judge(completion, gold: str) -> bool:
    """Extract + compare in this process, with no timeout (the body that workers run)."""
    try:
        return _verify_answer(extract_answer(completion), str(gold))
    except Exception:  # noqa: BLE001
        return False


# ---------------------------------------------------------------------------------- worker processes
# Workers are plain `python -m benchmarks.scoring --worker` subprocesses talking over two pipes: unlike
# multiprocessing's spawn/forkserver they never re-import the caller's __main__, never fork a parent that
# holds torch/CUDA threads, and may be started from daemonic processes (e.g. a multiprocessing.Pool worker).
_READY = "ready"
_DEPTH = 32  # tasks queued per worker
_PIPE_BUDGET = 16_384  # unread bytes per pipe, below any OS pipe buffer (Linux: 64 KiB)
_STARTUP_TIMEOUT = 120.0  # importing sympy on a loaded machine can be slow


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies, so a worker stuck in sympy never outlives a killed job."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _worker_main(rfd: int, wfd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
    _die_with_parent()
    inbox, outbox = Connection(rfd, writable=False), Connection(wfd, readable=False)
    _quiet_math_verify()
    _parse_gold("1")  # warm the imports before saying ready
    outbox.send(_READY)
    while True:
        try:
            msg = pickle.loads(inbox.recv_bytes())
        except (EOFError, OSError):
            return  # parent gone
        if msg is None:
            return
        kind, payload, gold = msg
        try:
            ok = judge(payload, gold) if kind == "c" else _verify_answer(payload, gold)
        except BaseException:  # noqa: BLE001 - RecursionError, MemoryError...
            ok = False
        try:
            outbox.send(bool(ok))
        except OSError:
            return


class ScorerError(RuntimeError):
    """The scorer's worker processes cannot start (a broken install, not a bad answer)."""


class _Worker:
    def __init__(self):
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "benchmarks.scoring", "--worker", str(to_child_r), str(from_child_w)]
        self.proc = subprocess.Popen(
            cmd, pass_fds=(to_child_r, from_child_w), env=env, stdin=subprocess.DEVNULL, close_fds=True
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.outbox = Connection(to_child_w, readable=False)
        self.conn = Connection(from_child_r, writable=False)  # what the parent waits on
        self.ready = False
        self.inflight: collections.deque = collections.deque()  # (task index, bytes) sent, not yet answered
        self.queued_bytes = 0
        self.deadline = 0.0  # for the head of ``inflight``

    def wait_ready(self) -> None:
        if self.ready:
            return
        msg = None
        if self.conn.poll(_STARTUP_TIMEOUT):
            with contextlib.suppress(EOFError, OSError):
                msg = self.conn.recv()
        if msg != _READY:
            self.kill()
            raise ScorerError(
                f"scorer worker failed to start ({sys.executable} -m benchmarks.scoring --worker, exit code "
                f"{self.proc.returncode}); check that math-verify imports in this environment: "
                f"`{sys.executable} -c 'import math_verify'`"
            )
        self.ready = True

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()
        self.outbox.close()
        self.conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.outbox.send_bytes(pickle.dumps(None))
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.outbox.close()
        self.conn.close()


class JudgePool:
    """Worker processes with a per-task wall-clock timeout: an overrunning (or crashing) worker is killed
    and replaced and its task scores False. Usable from any thread (calls are serialised by a lock)."""

    def __init__(self, workers: int | None = None, timeout: float = DEFAULT_TIMEOUT):
        if timeout is None or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.n = max(1, int(workers or default_workers()))
        self.timeout = float(timeout)
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self.timeouts = 0  # answers that overran, for diagnostics
        self.crashes = 0

    def _start(self, n: int) -> None:
        self._workers = [w for w in self._workers if w.alive()]
        fresh = [_Worker() for _ in range(n - len(self._workers))]  # start in parallel, then wait
        self._workers += fresh
        for w in fresh:
            w.wait_ready()

    def _replace(self, w: _Worker) -> _Worker:
        w.kill()
        new = _Worker()
        self._workers[self._workers.index(w)] = new
        new.wait_ready()
        return new

    def run(self, tasks: Sequence[tuple], progress: str | None = None, timeout: float | None = None) -> list[bool]:
        """``tasks`` are ``(kind, payload, gold)``; kind ``"c"`` = completion, ``"a"`` = extracted answer.
        ``timeout`` (seconds per answer) overrides the pool's for this call."""
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        timeout = float(timeout or self.timeout)
        results = [False] * len(tasks)
        if not tasks:
            return results
        bar = None
        if progress:
            from tqdm.auto import tqdm  # lazy: start-up time

            bar = tqdm(total=len(tasks), desc=progress, unit="ans", file=sys.stderr, mininterval=0.5)
        with self._lock:
            try:
                self._run(tasks, results, bar, timeout)
            except BaseException:
                for w in self._workers:  # a worker may hold a half-done task: start afresh next time
                    w.kill()
                self._workers = []
                raise
            finally:
                if bar:
                    bar.close()
        return results

    def _run(self, tasks, results, bar, timeout: float) -> None:
        """Pipelined dispatch: each worker keeps a short queue of tasks so it never waits for the parent.
        Only the queue's head is being judged, so its deadline starts when the previous result arrived.
        Unread bytes per pipe stay under ``_PIPE_BUDGET`` (or one task to an idle worker), so ``send`` never
        blocks on a busy worker and timeouts stay enforced."""
        self._start(min(self.n, len(tasks)))
        pending = collections.deque(range(len(tasks)))
        blobs: dict[int, bytes] = {}

        def blob(i: int) -> bytes:
            if i not in blobs:
                blobs[i] = pickle.dumps(tasks[i], protocol=pickle.HIGHEST_PROTOCOL)
            return blobs[i]

        def top_up(w: _Worker) -> None:
            while pending and len(w.inflight) < _DEPTH:
                i = pending[0]
                size = len(blob(i)) + 4
                if w.inflight and w.queued_bytes + size > _PIPE_BUDGET:
                    return
                pending.popleft()
                if not w.inflight:
                    w.deadline = time.monotonic() + timeout
                w.outbox.send_bytes(blob(i))
                w.inflight.append((i, size))
                w.queued_bytes += size

        def fail_head(w: _Worker) -> _Worker:
            """Kill ``w``; its head task scores False, the rest go back to the front of the queue."""
            head, *rest = w.inflight
            for i, _ in reversed(rest):
                pending.appendleft(i)
            if bar:
                bar.update(1)
            blobs.pop(head[0], None)
            return self._replace(w)

        for w in self._workers:
            w.inflight.clear()
            w.queued_bytes = 0
            top_up(w)
        while any(w.inflight for w in self._workers):
            busy = [w for w in self._workers if w.inflight]
            wait_s = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = set(_wait([w.conn for w in busy], timeout=wait_s))
            for w in list(busy):
                if w.conn in ready:
                    try:
                        while w.inflight and w.conn.poll():
                            ok = w.conn.recv()
                            (i, size) = w.inflight.popleft()
                            w.queued_bytes -= size
                            blobs.pop(i, None)
                            results[i] = bool(ok)
                            w.deadline = time.monotonic() + timeout
                            if bar:
                                bar.update(1)
                    except (EOFError, OSError):  # the worker died on its head task (e.g. out of memory)
                        self.crashes += 1
                        w = fail_head(w)
                elif w.deadline <= time.monotonic():
                    self.timeouts += 1
                    w = fail_head(w)
                else:
                    continue
                top_up(w)
            for w in self._workers:  # workers replaced above, or idle ones when tasks were requeued
                if not w.inflight:
                    top_up(w)

    def close(self) -> None:
        with self._lock:
            for w in self._workers:
                w.close()
            self._workers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_SHARED: dict[tuple[int, int], JudgePool] = {}
_SHARED_LOCK = threading.Lock()


def default_workers() -> int:
    """One worker per CPU this process may use (affinity/cgroup aware where the OS says), at most 32."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 32))


def shared_pool(workers: int | None = None) -> JudgePool:
    """A process-wide pool of ``workers`` scorer processes (default: :func:`default_workers`), started on first
    use and kept for later calls, so repeated scoring (e.g. a reward function) pays the start-up once."""
    n = max(1, int(workers or default_workers()))
    with _SHARED_LOCK:
        key = (os.getpid(), n)  # keyed by pid: a forked child must not reuse the parent's pipes
        if key not in _SHARED:
            _SHARED[key] = JudgePool(workers=n)
        return _SHARED[key]


@atexit.register
def _close_shared() -> None:
    for (pid, _), pool in list(_SHARED.items()):
        if pid == os.getpid():
            pool.close()


def is_correct(completion, gold: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether ``completion``'s final answer equals ``gold``. Never raises on content; at most about
    ``timeout`` seconds per call. Cheap cases are decided in-process; the rest go to a worker process."""
    try:
        answer = extract_answer(completion)
    except TypeError:
        raise
    except Exception:  # noqa: BLE001
        return False
    if answer is None:
        return False
    answer, gold = _strip_dollars(answer), _strip_dollars(str(gold))
    if not answer or not gold:
        return False
    fast = _fast_compare(answer, gold)
    if fast is not None:
        return fast
    return shared_pool(1).run([("a", answer, gold)], timeout=timeout)[0]


def is_correct_typed(completion: str, gold: str, answer_type: str = "free_form", choices: list[str] | None = None,
                     timeout: float | None = None) -> bool:
    """Score one completion by ``answer_type``. Free form: :func:`is_correct`. Multiple choice: the option the
    completion picks (:func:`benchmarks.choice.extract_choice`) against the gold's letter (a gold given as option
    text is mapped to its letter first); with no letter, an equivalent value of the gold option (e.g. "145" for
    "145°") still counts."""
    if answer_type not in choice.ANSWER_TYPES:
        raise ValueError(f"answer_type must be 'multi_choice' or 'free_form'; got {answer_type!r}")
    kw = {"timeout": timeout} if timeout else {}
    if answer_type == "free_form":
        return is_correct(str(completion), str(gold), **kw)
    gold_letter = choice.option_letter(gold, choices)
    if gold_letter is None:
        raise ValueError(f"multiple-choice gold {gold!r} is neither a letter nor one of the choices {choices!r}")
    picked = choice.extract_choice(completion, choices)
    if picked is not None:
        return picked == gold_letter
    if choices:  # no letter: an equivalent value of the gold option (e.g. "145" for "145°") still counts
        gold_text = choices[choice.LETTERS.index(gold_letter)]
        extracted = extract_answer(str(completion))
        if extracted is not None and choice.normalize_text(extracted) == choice.normalize_text(gold_text):
            return True
        return is_correct(str(completion), choice.normalize_text(gold_text) or gold_text, **kw)
    return False


def extract_typed(completion: str, answer_type: str = "free_form", choices: list[str] | None = None) -> str | None:
    """What the scorer read from a completion (the records' ``extracted`` field, and maj@k)."""
    if answer_type == "multi_choice":
        return choice.extract_choice(completion, choices) or extract_answer(str(completion))
    return extract_answer(str(completion))


def score_many(
    pairs: Iterable[tuple[str, str]],
    workers: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool | str = True,
) -> list[bool]:
    """``is_correct`` over ``(completion, gold)`` pairs in parallel worker processes (default: one per CPU),
    with a per-answer timeout and a progress bar. Results are in input order and equal to ``judge``'s."""
    tasks = [("c", _clean(c), str(g)) for c, g in pairs]
    desc = progress if isinstance(progress, str) else ("scoring" if progress else None)
    return shared_pool(workers).run(tasks, progress=desc, timeout=timeout)


def score_iter(
    pairs: Iterable[tuple[str, str]],
    workers: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    chunk: int = 4096,
) -> Iterator[bool]:
    """:func:`score_many` over an iterable of any length with bounded memory: pairs are read, scored and yielded
    ``chunk`` at a time, in input order, so memory stays flat however many completions stream through
    (perf/stress.py). Results equal ``score_many``'s."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    pool = shared_pool(workers)
    buf: list[tuple] = []
    for c, g in pairs:
        buf.append(("c", _clean(c), str(g)))
        if len(buf) == chunk:
            yield from pool.run(buf, timeout=timeout)
            buf = []
    if buf:
        yield from pool.run(buf, timeout=timeout)


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--worker":
    _worker_main(int(sys.argv[2]), int(sys.argv[3]))
