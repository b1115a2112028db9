// The ONNX Runtime side of bench/bench.py (the yardstick): time one model on one input.
//
// Usage: node ort_bench.js MODEL.onnx INPUT.f32 H W THREADS RUNS WARMUP LOGITS_OUT.f32
// INPUT holds 1 x 3 x H x W float32 (NCHW). Prints one JSON line like mo_bench; each
// time covers one `await session.run()` (wall clock). CPU execution provider, sequential
// execution, intra-op threads = THREADS, inter-op threads = 1, all graph optimizations.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, input, h, w, threads, runs, warmup, logitsOut] = process.argv.slice(2);
  const H = +h, W = +w, T = +threads, R = +runs, WU = +warmup;
  const buf = fs.readFileSync(input);
  const x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (x.length !== 3 * H * W) throw new Error(`input has ${x.length} floats, not ${3 * H * W}`);
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
  const logits = out[session.outputNames[0]].data;
  fs.writeFileSync(logitsOut, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
  const sorted = [...times].sort((a, b) => a - b);
  console.log(JSON.stringify({threads: T, runs: R, version: ort.env.versions ? ort.env.versions.common : '',
    times_ms: times.map((t) => +t.toFixed(4)), min_ms: sorted[0],
    median_ms: sorted[Math.floor(R / 2)]}));
}

main().catch((e) => { console.error(`ort_bench: ${e.message}`); process.exit(1); });
