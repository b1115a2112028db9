// The ONNX Runtime side of bench/bench.py (the yardstick): time one model on one input.
//
// Usage: node ort_bench.js MODEL.onnx INPUT.f32 H W THREADS RUNS WARMUP OUT_PREFIX
// INPUT holds 1 x 3 x H x W float32 (NCHW). Each output of the model is written as
// float32 to OUT_PREFIX.<output name>.f32 after the runs. Prints one JSON line like
// mo_bench; each time covers one `await session.run()` (wall clock). CPU execution
// provider, sequential execution, intra-op threads = THREADS, inter-op threads = 1, all
// graph optimizations. max_rss_kb: the peak resident set of the whole node process after
// the runs (VmHWM of /proc/self/status; process.resourceUsage().maxRSS where there is no
// /proc: on Linux that one keeps the peak of the parent across exec); base_rss_kb: the same
// before the session was created (node and the ONNX Runtime library loaded, no model).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function peakRssKb() {
  try {
    const m = /^VmHWM:\s*(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return +m[1];
  } catch (e) { /* not Linux */ }
  return process.resourceUsage().maxRSS;
}

async function main() {
  const [model, input, h, w, threads, runs, warmup, outPrefix] = process.argv.slice(2);
  const H = +h, W = +w, T = +threads, R = +runs, WU = +warmup;
  const buf = fs.readFileSync(input);
  const x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (x.length !== 3 * H * W) throw new Error(`input has ${x.length} floats, not ${3 * H * W}`);
  const baseRss = peakRssKb();
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: T,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, H, W])};
  const times = [];
  let out;
  for (let r = -WU; r < R; r++) {
    const t0 = process.hrtime.bigint();
    out = await session.run(feeds);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r >= 0) times.push(ms);
  }
  const maxRss = peakRssKb();
  const shapes = {};
  for (const name of session.outputNames) {
    const d = out[name].data;
    if (!(d instanceof Float32Array)) throw new Error(`output ${name} is not float32`);
    fs.writeFileSync(`${outPrefix}.${name}.f32`, Buffer.from(d.buffer, d.byteOffset, d.byteLength));
    shapes[name] = out[name].dims;
  }
  const sorted = [...times].sort((a, b) => a - b);
  console.log(JSON.stringify({threads: T, runs: R, times_ms: times.map((t) => +t.toFixed(4)),
    min_ms: sorted[0], median_ms: sorted[Math.floor(R / 2)], max_rss_kb: maxRss,
    base_rss_kb: baseRss, outputs: shapes}));
}

main().catch((e) => { console.error(`ort_bench: ${e.message}`); process.exit(1); });
