"""Label rendering speed and memory, against a bare ``qrcode`` matrix and the in-memory renderer in the same run.

Run by hand: ``.venv/bin/python benchmarks/labels.py [--quick]``. Goals (issue 4): a label in a batch PDF costs
at most 1.25 × a bare QR matrix of the same URL; 1,000 labels in one PDF take at most 7 s; memory stays flat as
the batch grows.

Memory is measured for batches of 100, 1,000 and 5,000 labels streamed by ``write_pdf`` into a file, the labels
made one at a time by a generator as the app makes them from rows, in two ways:

* the tracemalloc peak of Python allocations while the batch is written, in this process;
* the peak resident memory (RSS) of a fresh interpreter per size, above what it held once the font was loaded
  and a warm-up label drawn: this also sees what tracemalloc does not (C allocations, allocator slack).

The same-run baseline is ``render_pdf``, which returns the document as bytes and so must grow with it.
"""

from __future__ import annotations

import argparse
import gc
import random
import string
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import qrcode
from qrcode.constants import ERROR_CORRECT_M

# This script is itself named labels.py and its folder comes first on sys.path: put the project root
# before it, or ``import labels`` would import this file.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labels import LabelData, LabelParty, render_pdf, render_png, render_zpl, write_pdf  # noqa: E402
from labels.text import load_face  # noqa: E402

CST = timezone(timedelta(hours=8))
ALPHABET = "".join(c for c in string.ascii_uppercase + string.digits if c not in "01OI")
MEMORY_SIZES = (100, 1000, 5000)
# "Flat": the largest batch peaks at most this much above the smallest, in MiB or as a ratio, whichever is looser.
FLAT_MIB = 4.0
FLAT_RATIO = 1.5

RECIPIENT = LabelParty("欧阳娜娜", "13803712345", "河南省", "郑州市", "上街区", "新安路街道济源路8号院3号楼2单元501室")
SENDER = LabelParty("上街区政务服务中心", "0371-68123456", "河南省", "郑州市", "上街区", "中心路132号",
                    is_organisation=True)


def urls(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    return [f"http://127.0.0.1:8080/t/{''.join(rnd.choices(ALPHABET, k=13))}" for _ in range(n)]


def label(i: int, url: str) -> LabelData:
    return LabelData(
        waybill_no=f"1295{i:09d}", tracking_url=url, kind="delivery" if i % 3 else "intake",
        carrier_name="EMS", product_name="特快专递", destination_name="郑州上街", destination_code="450041",
        route_code="451-A07", sender=SENDER, recipient=RECIPIENT, contents=(("食品经营许可证正本", 1),),
        cases=((f"410106-2018-{i % 100000:05d}", "食品经营许可证核发"),), department="上街区市场监督管理局",
        window="综合受理3号窗口", printed_at=datetime(2025, 11, 26, 14, 30, tzinfo=CST),
    )


def labels_for(batch: list[str]) -> list[LabelData]:
    return [label(i, url) for i, url in enumerate(batch)]


def label_stream(n: int, seed: int) -> Iterator[LabelData]:
    """``n`` labels made one at a time: the input is never held whole, so memory measures the writer alone."""
    rnd = random.Random(seed)
    for i in range(n):
        yield label(i, f"http://127.0.0.1:8080/t/{''.join(rnd.choices(ALPHABET, k=13))}")


def bare_matrix(url: str) -> list[list[bool]]:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M)
    code.add_data(url)
    code.make()
    return code.get_matrix()


def per_item_ms(fn: Callable[[], object], n: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / n * 1000


def traced_peak_mib(fn: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def streamed_peak(size: int, folder: Path) -> tuple[float, int]:
    """tracemalloc peak (MiB) of writing ``size`` labels to a file, and the file's size."""
    path = folder / f"batch-{size}.pdf"
    with path.open("wb") as out:
        peak = traced_peak_mib(lambda: write_pdf(label_stream(size, seed=size), "100x150", out))
    written = path.stat().st_size
    path.unlink()
    return peak, written


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_child(size: int) -> None:
    """In a fresh interpreter: resident memory after warm-up, and its peak while streaming ``size`` labels to a
    file, in KiB. The peak mark is reset after warm-up (Linux: /proc/self/clear_refs), so that parsing the font,
    which briefly needs more than anything after it, does not hide what the batch needs."""
    load_face()
    render_pdf(label_stream(2, seed=1))  # the fixed costs a worker pays once: font parsed, caches warm
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    with tempfile.TemporaryDirectory() as tmp, (Path(tmp) / "batch.pdf").open("wb") as out:
        write_pdf(label_stream(size, seed=size), "100x150", out)
    print(before, _status_kib("VmHWM"))


def rss_growth_mib(size: int) -> tuple[float, float]:
    """(resident memory after warm-up, how far above it the peak went while streaming) in MiB, fresh interpreter."""
    out = subprocess.run([sys.executable, __file__, "--rss-child", str(size)], check=True, capture_output=True,
                         text=True, cwd=ROOT).stdout.split()
    before, peak = int(out[0]), int(out[1])
    return before / 1024, (peak - before) / 1024


def verdict(peaks: list[float]) -> str:
    low, high = peaks[0], peaks[-1]
    flat = high - low <= FLAT_MIB or high <= low * FLAT_RATIO
    return (f"{'FLAT' if flat else 'GROWS'}: {high:.1f} vs {low:.1f} MiB "
            f"(goal: within {FLAT_MIB:.0f} MiB or {FLAT_RATIO}×)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller samples, no 5,000-label batch")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    n = 100 if args.quick else 300
    sample = urls(n)
    data = labels_for(sample)
    load_face()  # once per process, like a worker; timed separately below
    render_pdf(data[:2])  # warm caches the same way a long-running worker has them warm

    # In a fresh interpreter: this process has the font loaded already.
    probe = "import time; t = time.perf_counter(); from labels.text import load_face; load_face(); " \
            "print(time.perf_counter() - t)"
    font_s = float(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True,
                                  cwd=ROOT).stdout)

    bare = per_item_ms(lambda: [bare_matrix(u) for u in sample], n)
    single = per_item_ms(lambda: [render_pdf([label]) for label in data], n)
    batch = per_item_ms(lambda: render_pdf(data), n)
    png = per_item_ms(lambda: [render_png(label) for label in data[:50]], 50, repeat=1)
    zpl = per_item_ms(lambda: render_zpl(data[:50]), 50, repeat=1)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        thousand = labels_for(urls(1000, seed=11))
        gc.collect()
        start, cpu_start = time.perf_counter(), time.process_time()
        with (folder / "thousand.pdf").open("wb") as out:
            write_pdf(thousand, "100x150", out)
        thousand_s = time.perf_counter() - start
        # CPU time too: on a shared machine the wall time also counts other processes' turns.
        thousand_cpu = time.process_time() - cpu_start
        thousand_bytes = (folder / "thousand.pdf").stat().st_size

        print(f"font loading (once per process):       {font_s * 1000:.0f} ms")
        print(f"bare qrcode matrix (default settings): {bare:6.2f} ms/label   <- baseline, same run")
        print(f"PDF, one label per document:           {single:6.2f} ms/label   ratio {single / bare:.2f}")
        print(f"PDF, batch of {n}:                     {batch:6.2f} ms/label   ratio {batch / bare:.2f}"
              "  (goal ≤ 1.25)")
        print(f"PNG 203 dpi:                           {png:6.2f} ms/label")
        print(f"ZPL 203 dpi:                           {zpl:6.2f} ms/label")
        print(f"1,000 labels streamed into one PDF:    {thousand_s:6.2f} s  ({thousand_cpu:.2f} s CPU, "
              f"{thousand_bytes / 2**20:.1f} MiB)  (goal ≤ 7 s)")

        sizes = MEMORY_SIZES[:2] if args.quick else MEMORY_SIZES
        print("\nmemory by batch size, 100x150 (tracemalloc peak while writing; RSS from a fresh interpreter)")
        streamed: list[float] = []
        grown: list[float] = []
        for size in sizes:
            peak, written = streamed_peak(size, folder)
            in_memory = traced_peak_mib(lambda size=size: render_pdf(label_stream(size, seed=size)))
            base, growth = rss_growth_mib(size)
            streamed.append(peak)
            grown.append(growth)
            print(f"batch {size:5d}: write_pdf to a file {peak:6.2f} MiB peak, RSS {base:6.1f} + {growth:5.1f} MiB"
                  f"   | render_pdf (bytes) {in_memory:6.1f} MiB   output {written / 2**20:5.1f} MiB"
                  f"   streamed {peak * 1024 / size:6.2f} KiB/label")
        print(f"tracemalloc peak, streamed: {verdict(streamed)}")
        print(f"RSS peak above warm-up:     {verdict(grown)}")


if __name__ == "__main__":
    main()
