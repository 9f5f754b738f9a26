"""Viewer benchmark (issue 8): the diagnostic viewer in headless Chromium, software WebGL.

A live Nexrel (migrated, seed_demo's practice and clinician user) on a throwaway data dir,
`manage.py runserver --noreload --insecure` with DEBUG off, as tests/browser.py's
`web_server` runs it. Two studies are ingested through the real ingest path
(tests/dicom_samples.ingest_bytes: stored durably, then the pipeline task run, so the
previews exist), from tests/e2e/test_viewer.py's generators:

pano  a panoramic, 2900x1500, 16-bit MONOCHROME2 (explicit VR little endian, 8.7 MB of
      pixels), opened at /viewer/studies/<uid>/?instance=<sop>;
cbct  a CBCT series of 300 axial slices, 512x512 16-bit by default (--cbct), opened at its
      first slice; then MPR is clicked.

Chromium (Playwright, `executable_path=shutil.which("chromium")`, tests/browser.py's flags) is
logged in once through /accounts/login/; each repetition is a new browser context with that
session cookie (so an empty HTTP cache and code cache) and a new page. All times are read from
the page's Performance API (page.evaluate), in ms from the navigation start:

first pixel     the server preview <img> painted: its Element Timing entry's renderTime
                (templates/viewer/study.html gives it elementtiming="nexrel-preview"); its
                load event is recorded too
full fidelity   performance.mark("nexrel:full-fidelity"), set by viewer.js at the stack
                viewport's first render of the decoded image (static/viewer/src/perf.js lists
                the marks)
volume loaded   (cbct) "nexrel:volume-loaded": every slice of MPR's streaming volume loaded
                (the stack viewport itself loads only the slice shown: it does not prefetch)
MPR ready       (cbct) from the click on MPR to "nexrel:mpr-ready" (the three viewports'
                first render of the streaming volume) and to "nexrel:mpr-complete" (their
                render once the volume is loaded)

plus, for where the time goes: the resource timings of the page, viewer.js, the metadata and
the frames requests, the loader's decode and load times of the image (decodeTimeInMS,
loadTimeInMS), and the other marks. One warm-up repetition per case is discarded.

Usage: bench_viewer.py [--reps 5] [--cbct 512x512x300] [--work /tmp/nexrel-bench-viewer]
Results: bench/results/viewer-<stamp>/results.json and summary.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_qr import manage, nexrel_env, prepare_nexrel  # noqa: E402
from run_bench import PY, ROOT, free_port, wait_port  # noqa: E402
from stats import percentile  # noqa: E402

from nexrel import supervisor  # noqa: E402
from tests.browser import CHROMIUM_ARGS  # noqa: E402

HERE = ROOT / "bench"
USER, PASSWORD = "clinician", "nexrel-demo"  # seed_demo's (nexrel/demo.py)
VIEWPORT = {"width": 1400, "height": 900}

# Ingests both studies in `manage.py shell` (Django set up on the bench's data dir).
INGEST = """
import json, time
from patients.models import Practice
from django.conf import settings
from tests.dicom_samples import ingest_dataset
from tests.e2e.test_viewer import cbct_slices, panoramic
practice = Practice.objects.get(ae_title=settings.DICOM_AE_TITLE)
out = {{}}
start = time.perf_counter()
pano = ingest_dataset(practice, panoramic(rows=1500, columns=2900))
out["pano"] = {{"study": pano.study.study_instance_uid, "instance": pano.sop_instance_uid,
               "seconds": time.perf_counter() - start}}
start = time.perf_counter()
slices = [ingest_dataset(practice, ds) for ds in cbct_slices(count={count}, size={size})]
out["cbct"] = {{"study": slices[0].study.study_instance_uid,
               "instance": slices[0].sop_instance_uid, "seconds": time.perf_counter() - start}}
print("INGESTED " + json.dumps(out))
"""

# Before any page script: Element Timing and LCP entries (observers only), the preview's
# load event, the click on MPR, and room for 300+ resource timings (the default is 250).
INIT_SCRIPT = """
performance.setResourceTimingBufferSize(2000);
window.__bench = {element: [], lcp: [], previewLoad: null};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__bench.element.push(
    {identifier: e.identifier, renderTime: e.renderTime, loadTime: e.loadTime});
}).observe({type: "element", buffered: true});
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__bench.lcp.push(
    {renderTime: e.renderTime, loadTime: e.loadTime, id: e.id, size: e.size});
}).observe({type: "largest-contentful-paint", buffered: true});
document.addEventListener("load", (e) => {
  if (e.target.id === "preview" && window.__bench.previewLoad === null)
    window.__bench.previewLoad = performance.now();
}, true);
document.addEventListener("click", (e) => {
  if (e.target.closest && e.target.closest("#mpr-toggle")) performance.mark("bench:mpr-click");
}, true);
"""

MARKED = "(name) => performance.getEntriesByName(name, 'mark').length > 0"

# Everything measured, read once the page is done.
COLLECT = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const marks = {};
  for (const m of performance.getEntriesByType("mark")) marks[m.name] = m.startTime;
  const res = (e) => ({name: e.name.replace(location.origin, ""), initiator: e.initiatorType,
    start: e.startTime, requestStart: e.requestStart, responseStart: e.responseStart,
    responseEnd: e.responseEnd, bytes: e.encodedBodySize});
  const resources = performance.getEntriesByType("resource").map(res);
  const vp = window.nexrelViewer?.viewport;
  const image = vp?.getCornerstoneImage?.() || null;
  const gl = document.createElement("canvas").getContext("webgl2");
  const info = gl && gl.getExtension("WEBGL_debug_renderer_info");
  return {
    nav: {responseStart: nav.responseStart, responseEnd: nav.responseEnd,
          domContentLoaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd},
    marks, resources, element: window.__bench.element, lcp: window.__bench.lcp,
    previewLoad: window.__bench.previewLoad,
    image: image && {rows: image.rows, columns: image.columns, decodeTimeInMS: image.decodeTimeInMS,
                     loadTimeInMS: image.loadTimeInMS, transferSyntaxUID: image.transferSyntaxUID},
    cpuRendering: vp ? Boolean(vp.useCPURendering) : null,
    webgl: info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : (gl ? "webgl2" : null),
    status: document.getElementById("status")?.textContent || "",
  };
}"""


class NexrelWeb:
    """``manage.py runserver --noreload --insecure`` (static files served), DEBUG off."""

    def __init__(self, env: dict, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [PY, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload", "--insecure"],
            cwd=ROOT, env={**env, "DEBUG": "false"}, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_port(self.port, 120)

    def stop(self) -> None:
        supervisor.stop(self.proc, timeout=20, group=True)
        self.log.close()


def machine() -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    chromium = subprocess.run(
        [shutil.which("chromium") or "chromium", "--version"], capture_output=True, text=True
    ).stdout.strip()
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu,
            "ram_gib": round(mem_kb / 2**20, 1), "chromium": chromium,
            "python": platform.python_version(), "kernel": platform.release()}  # fmt: skip


def first_entry(resources: list[dict], needle: str) -> dict | None:
    return next((r for r in resources if needle in r["name"]), None)


def derive(raw: dict, case: str) -> dict:
    """The figures of one page load, in ms from the navigation start (durations say so)."""
    m, res = raw["marks"], raw["resources"]
    preview = next((e for e in raw["element"] if e["identifier"] == "nexrel-preview"), None)
    frames = [r for r in res if "/frames/" in r["name"]]
    first_frame = frames[0] if frames else None
    js = first_entry(res, "/viewer/dist/viewer.js")
    meta = first_entry(res, "/metadata")
    row = {
        "html_response_end": raw["nav"]["responseEnd"],
        "first_pixel": preview["renderTime"] if preview else None,
        "preview_load_event": raw["previewLoad"],
        "viewer_js_end": js and js["responseEnd"],
        "module_start": m.get("nexrel:start"),
        "init_done": m.get("nexrel:init"),
        "metadata_end": meta and meta["responseEnd"],
        "frame_request_start": first_frame and first_frame["requestStart"],
        "frame_response_start": first_frame and first_frame["responseStart"],
        "frame_response_end": first_frame and first_frame["responseEnd"],
        "frame_MB": first_frame and first_frame["bytes"] / 1e6,
        "decode_ms": raw["image"] and raw["image"]["decodeTimeInMS"],
        "load_ms": raw["image"] and raw["image"]["loadTimeInMS"],
        "stack_set": m.get("nexrel:stack-set"),
        "full_fidelity": m.get("nexrel:full-fidelity"),
    }
    if case == "cbct":
        click = m.get("bench:mpr-click")
        after = [r for r in frames if click is not None and r["start"] >= click]

        def since(name: str) -> float | None:
            return None if click is None or name not in m else m[name] - click

        row.update({
            "mpr_click": click,
            "frames_requested_after_click": len(after),
            "mpr_last_frame_end": max(r["responseEnd"] for r in after) - click if after else None,
            "mpr_ready": since("nexrel:mpr-ready"),
            "volume_loaded": since("nexrel:volume-loaded"),
            "mpr_complete": since("nexrel:mpr-complete"),
            "all_slices_from_nav": m.get("nexrel:volume-loaded"),
        })  # fmt: skip
    return row


def run_case(browser, state: dict, url: str, case: str, *, warm: bool = False) -> dict:
    """One page load in a new context (an empty cache); ``warm``: the second load of the page
    in that context (the HTTP cache and V8's code cache hold the bundle, as for a dentist's
    second study of the day), without MPR."""
    context = browser.new_context(storage_state=state, viewport=VIEWPORT, locale="en-CA")
    problems: list[str] = []
    try:
        page = context.new_page()
        page.add_init_script(INIT_SCRIPT)
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" else None)  # fmt: skip
        page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}")
                if r.status >= 400 else None)  # fmt: skip
        if warm:
            page.goto(url, wait_until="commit")
            page.wait_for_function(MARKED, arg="nexrel:full-fidelity", timeout=60_000)
            page.wait_for_timeout(500)
        page.goto(url, wait_until="commit")
        page.wait_for_function(MARKED, arg="nexrel:full-fidelity", timeout=60_000, polling=50)
        if case == "cbct" and not warm:
            page.click("#mpr-toggle")
            page.wait_for_function(MARKED, arg="nexrel:mpr-complete", timeout=300_000, polling=100)
        page.wait_for_timeout(200)  # the last Element Timing / LCP entries are delivered
        raw = page.evaluate(COLLECT)
    finally:
        context.close()
    raw["problems"] = problems
    return raw


def stats(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": statistics.median(values), "p95": percentile(values, 95),
            "min": min(values), "max": max(values)}  # fmt: skip


def report(record: dict) -> str:
    mc, cfg = record["machine"], record["config"]
    lines = [
        f"# Viewer in Chromium, {record['stamp']}",
        "",
        f"`{record['command']}`",
        "",
        f"{mc['nproc']} cores, {mc['cpu']}, {mc['ram_gib']} GiB RAM, {mc['chromium']} "
        f"(Playwright {record['playwright']}), headless, WebGL: {record['webgl']}, "
        f"Cornerstone CPU rendering: {record['cpu_rendering']}.",
        f"Panoramic 2900x1500 16-bit; CBCT {cfg['cbct']} 16-bit. {cfg['reps']} repetitions "
        "(new context each), after one warm-up. ms from the navigation start unless noted.",
        "",
        "| case | figure | median | p95 | min | max |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for case, rows in record["runs"].items():
        for key in rows[0]:
            s = stats([r[key] for r in rows])
            if s["n"]:
                lines.append(f"| {case} | {key} | {s['median']:.1f} | {s['p95']:.1f} | "
                             f"{s['min']:.1f} | {s['max']:.1f} |")  # fmt: skip
    problems = sorted({p for raws in record["raw"].values() for r in raws for p in r["problems"]})
    lines += ["", f"Page problems: {problems or 'none'}", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--cbct", default="512x512x300", help="ROWSxCOLUMNSxSLICES (square)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/nexrel-bench-viewer"))
    cfg = parser.parse_args()
    rows, columns, count = (int(v) for v in cfg.cbct.split("x"))
    assert rows == columns, "cbct_slices makes square slices"
    from playwright.sync_api import sync_playwright

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = HERE / "results" / f"viewer-{stamp}"
    out.mkdir(parents=True)
    shutil.rmtree(cfg.work, ignore_errors=True)
    cfg.work.mkdir(parents=True)
    env = nexrel_env(cfg.work)
    print("preparing Nexrel (migrate, seed_demo) and ingesting", flush=True)
    prepare_nexrel(env, 0)
    ingested = manage(env, "shell", "-c", INGEST.format(count=count, size=rows))
    studies = json.loads(ingested.split("INGESTED ", 1)[1])
    for case, s in studies.items():
        print(f"  {case}: ingested and processed in {s['seconds']:.1f} s", flush=True)
    record: dict = {
        "stamp": stamp, "command": "bench/bench_viewer.py " + " ".join(sys.argv[1:]),
        "machine": machine(), "config": {"reps": cfg.reps, "cbct": cfg.cbct},
        "ingest": studies, "runs": {}, "raw": {},
    }  # fmt: skip
    web = NexrelWeb(env, cfg.work / "web.log")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"),
                                         args=CHROMIUM_ARGS)  # fmt: skip
            record["playwright"] = metadata.version("playwright")
            login = browser.new_context(locale="en-CA")
            page = login.new_page()
            page.goto(f"{web.url}/accounts/login/?next=/")
            page.fill("input[name=username]", USER)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{web.url}/")
            state = login.storage_state()
            login.close()
            plan = [(case, case, s, False) for case, s in studies.items()]
            plan += [(f"{case}-warm", case, s, True) for case, s in studies.items()]
            for label_case, case, s, warm in plan:
                url = f"{web.url}/viewer/studies/{s['study']}/?instance={s['instance']}"
                raws = []
                for rep in range(cfg.reps + 1):
                    raw = run_case(browser, state, url, case, warm=warm)
                    row = derive(raw, case if not warm else "warm")
                    label = "warm-up" if rep == 0 else f"rep {rep}"
                    mpr = case == "cbct" and not warm
                    extra = (f"  MPR ready {row['mpr_ready']:.0f}  volume "
                             f"{row['volume_loaded']:.0f}  complete {row['mpr_complete']:.0f} "
                             "ms after the click" if mpr else "")  # fmt: skip
                    print(
                        f"  {label_case} {label:7} first pixel {row['first_pixel'] or 0:6.0f}  "
                        f"full fidelity {row['full_fidelity']:6.0f} ms{extra}",
                        flush=True,
                    )
                    if rep:
                        raws.append(raw)
                        record["runs"].setdefault(label_case, []).append(row)
                record["raw"][label_case] = raws
                record["webgl"] = raws[-1]["webgl"]
                record["cpu_rendering"] = raws[-1]["cpuRendering"]
            record["chromium_playwright"] = browser.version
            browser.close()
    finally:
        web.stop()
    (out / "results.json").write_text(json.dumps(record, indent=1))
    summary = report(record)
    (out / "summary.md").write_text(summary)
    print(summary)
    print(f"results: {out}")


if __name__ == "__main__":
    main()
