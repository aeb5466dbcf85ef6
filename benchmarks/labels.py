"""Label rendering speed and memory, against a bare ``qrcode`` matrix in the same run.

Run by hand: ``.venv/bin/python benchmarks/labels.py [--quick]``. Goals (see labels/pdf.py):
a label in a batch PDF costs at most 1.25 × a bare QR matrix of the same URL; 1,000 labels in one PDF
take at most 7 s; peak memory per label stays flat as the batch grows.
"""

from __future__ import annotations

import argparse
import gc
import random
import string
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import qrcode
from qrcode.constants import ERROR_CORRECT_M

# This script is itself named labels.py and its folder comes first on sys.path: put the project root
# before it, or ``import labels`` would import this file.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labels import LabelData, LabelParty, render_pdf, render_png, render_zpl
from labels.text import load_face as register_reportlab_font

CST = timezone(timedelta(hours=8))
ALPHABET = "".join(c for c in string.ascii_uppercase + string.digits if c not in "01OI")


def urls(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    return [f"http://127.0.0.1:8080/t/{''.join(rnd.choices(ALPHABET, k=13))}" for _ in range(n)]


def labels_for(batch: list[str]) -> list[LabelData]:
    recipient = LabelParty("欧阳娜娜", "13803712345", "河南省", "郑州市", "上街区",
                           "新安路街道济源路8号院3号楼2单元501室")
    sender = LabelParty("上街区政务服务中心", "0371-68123456", "河南省", "郑州市", "上街区", "中心路132号",
                        is_organisation=True)
    return [
        LabelData(
            waybill_no=f"1295{i:09d}", tracking_url=url, kind="delivery" if i % 3 else "intake",
            carrier_name="EMS", product_name="特快专递", destination_name="郑州上街", destination_code="450041",
            route_code="451-A07", sender=sender, recipient=recipient, contents=(("食品经营许可证正本", 1),),
            cases=((f"410106-2018-{i % 100000:05d}", "食品经营许可证核发"),), department="上街区市场监督管理局",
            window="综合受理3号窗口", printed_at=datetime(2025, 11, 26, 14, 30, tzinfo=CST),
        )
        for i, url in enumerate(batch)
    ]


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


def peak_memory(batch: list[LabelData]) -> tuple[float, int]:
    gc.collect()
    tracemalloc.start()
    out = render_pdf(batch)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20, len(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller samples, no 5,000-label batch")
    args = parser.parse_args()
    n = 100 if args.quick else 300
    sample = urls(n)
    data = labels_for(sample)
    register_reportlab_font()  # once per process, like a worker; timed separately below
    render_pdf(data[:2])  # warm caches the same way a long-running worker has them warm

    # In a fresh interpreter: this process has the font registered already.
    probe = ("import time; t = time.perf_counter(); from labels.text import register_reportlab_font; "
             "register_reportlab_font(); print(time.perf_counter() - t)")
    font_s = float(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True,
                                  cwd=Path(__file__).resolve().parents[1]).stdout)

    bare = per_item_ms(lambda: [bare_matrix(u) for u in sample], n)
    single = per_item_ms(lambda: [render_pdf([label]) for label in data], n)
    batch = per_item_ms(lambda: render_pdf(data), n)
    png = per_item_ms(lambda: [render_png(label) for label in data[:50]], 50, repeat=1)
    zpl = per_item_ms(lambda: render_zpl(data[:50]), 50, repeat=1)

    thousand = labels_for(urls(1000, seed=11))
    gc.collect()
    start = time.perf_counter()
    doc = render_pdf(thousand)
    thousand_s = time.perf_counter() - start

    print(f"font registration (once per process): {font_s * 1000:.0f} ms")
    print(f"bare qrcode matrix (default settings): {bare:6.2f} ms/label   <- baseline, same run")
    print(f"PDF, one label per document:           {single:6.2f} ms/label   ratio {single / bare:.2f}")
    print(f"PDF, batch of {n}:                     {batch:6.2f} ms/label   ratio {batch / bare:.2f}  (goal ≤ 1.25)")
    print(f"PNG 203 dpi:                           {png:6.2f} ms/label")
    print(f"ZPL 203 dpi:                           {zpl:6.2f} ms/label")
    print(f"1,000 labels in one PDF:               {thousand_s:6.2f} s  ({len(doc) / 2**20:.1f} MiB)  (goal ≤ 7 s)")

    sizes = (100, 1000) if args.quick else (100, 1000, 5000)
    for size in sizes:
        peak, out = peak_memory(labels_for(urls(size, seed=size)))
        print(f"peak memory, batch {size:5d}: {peak:7.1f} MiB   output {out / 2**20:6.1f} MiB   "
              f"{peak * 1024 / size:6.1f} KiB/label   peak-output {(peak - out / 2**20):6.1f} MiB")


if __name__ == "__main__":
    main()
