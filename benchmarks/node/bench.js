'use strict';
// Node Bull 4.x adapter for pyqueue's benchmark harness. Same modes and JSON-lines
// protocol as benchmarks/peers/_common.py:
//   node bench.js MODE --url URL [--bull-module bull|bull412] [--queue bench] [--n N]
//                      [--bulk] [--concurrency C] [--rate R] [--delay-ms D]
// Bull settings: defaults (completed jobs are kept), queue.process(C, fn).
// --bull-module picks the package: "bull" is Bull 4.16.5, "bull412" Bull 4.12.9 (an npm
// alias in package.json); both use the same Redis key layout. "bullmq" is BullMQ 6.7.6,
// whose API differs (Queue + Worker objects, a job name on every add): see the
// `open*` functions, the only places that differ.

const fs = require('fs');
const readline = require('readline');
const { performance } = require('perf_hooks');

const BULK_CHUNK = 1000;
const REPORT_EVERY_MS = 20;

function parseArgs(argv) {
  const args = { mode: argv[0], queue: 'bench', n: 1000, bulk: false, concurrency: 1,
    rate: 200, delayMs: 0, burst: false, bullModule: 'bull' };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--url') args.url = argv[++i];
    else if (a === '--bull-module') args.bullModule = argv[++i];
    else if (a === '--queue') args.queue = argv[++i];
    else if (a === '--n') args.n = Number(argv[++i]);
    else if (a === '--bulk') args.bulk = true;
    else if (a === '--burst') args.burst = true;
    else if (a === '--concurrency') args.concurrency = Number(argv[++i]);
    else if (a === '--rate') args.rate = Number(argv[++i]);
    else if (a === '--delay-ms') args.delayMs = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!args.url) throw new Error('--url is required');
  if (!['bull', 'bull412', 'bullmq'].includes(args.bullModule)) {
    throw new Error(`--bull-module must be bull, bull412 or bullmq, not ${args.bullModule}`);
  }
  return args;
}

function emit(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }
const wallNow = () => (performance.timeOrigin + performance.now()) / 1000;
const cpuSeconds = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
// VmHWM, not resourceUsage().maxRSS: Linux carries the parent's high-water mark across exec.
const peakRssMb = () => {
  try {
    const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch (e) { /* not Linux */ }
  return process.resourceUsage().maxRSS / 1024;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const plainPayload = (i) => ({ i });
let lib = null; // set in main() from --bull-module
let isBullMQ = false;

function bullmqConnection(url) {
  const u = new URL(url);
  const db = u.pathname && u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return { host: u.hostname, port: Number(u.port || 6379), db, maxRetriesPerRequest: null };
}

// A producer: add(data, opts) and addBulk([{data}]) on either API, and close().
async function openProducer(args) {
  if (!isBullMQ) {
    const q = new lib(args.queue, args.url);
    await q.isReady();
    return { add: (data, opts) => q.add(data, opts), addBulk: (jobs) => q.addBulk(jobs),
      close: () => q.close() };
  }
  const q = new lib.Queue(args.queue, { connection: bullmqConnection(args.url) });
  await q.waitUntilReady();
  return {
    add: (data, opts) => q.add('noop', data, opts),
    addBulk: (jobs) => q.addBulk(jobs.map((j) => ({ name: 'noop', data: j.data }))),
    close: () => q.close(),
  };
}

// A worker running `fn` at concurrency C, calling `onCompleted(job)` on each local
// 'completed' event (emitted once the finishing script has stored the result).
function openWorker(args, fn, onCompleted) {
  if (!isBullMQ) {
    const q = new lib(args.queue, args.url);
    q.on('completed', onCompleted);
    q.process(args.concurrency, fn);
    return { close: () => q.close() };
  }
  const w = new lib.Worker(args.queue, fn, {
    connection: bullmqConnection(args.url), concurrency: args.concurrency,
  });
  w.on('completed', onCompleted);
  return { close: () => w.close() };
}

async function enqueue(args) {
  const q = await openProducer(args);
  const t0 = performance.now();
  let added = 0;
  if (args.bulk || args.mode === 'fill') {
    for (let start = 0; start < args.n; start += BULK_CHUNK) {
      const batch = [];
      for (let i = start; i < Math.min(args.n, start + BULK_CHUNK); i++) batch.push({ data: plainPayload(i) });
      added += (await q.addBulk(batch)).length;
    }
  } else {
    for (let i = 0; i < args.n; i++) { await q.add(plainPayload(i)); added++; }
  }
  const seconds = (performance.now() - t0) / 1000;
  await q.close();
  if (added !== args.n) throw new Error(`added ${added}, expected ${args.n}`);
  if (args.mode === 'fill') emit({ event: 'result', n: added });
  else emit({ event: 'result', n: args.n, seconds, jobs_per_s: args.n / seconds });
}

async function produce(args) {
  const q = await openProducer(args);
  const delayS = args.delayMs / 1000;
  const opts = args.delayMs ? { delay: args.delayMs } : {};
  const t0 = performance.now();
  for (let i = 0; i < args.n; i++) {
    const wait = t0 + (i * 1000) / args.rate - performance.now();
    if (wait > 0) await sleep(wait);
    await q.add({ i, t: wallNow(), d: delayS }, opts);
  }
  const elapsed = (performance.now() - t0) / 1000;
  await q.close();
  emit({ event: 'result', sent: args.n, rate: args.n / elapsed });
}

// Timed from `go`: the Queue (Bull's worker object: it is both client and worker) is
// constructed after it, as pyqueue's Worker is, then queue.process() starts it. Two end
// points per job: the handler's start, and Bull's own local 'completed' event (emitted
// once moveToCompleted has stored the result). `count` lines report completions.
async function worker(args) {
  const stats = {
    started: 0, completed: 0, seenStart: new Set(), seenDone: new Set(), latencies: [],
    firstStart: 0, lastStart: 0, lastCompleted: 0,
  };
  const lines = readline.createInterface({ input: process.stdin });
  const it = lines[Symbol.asyncIterator]();
  const expect = async (word) => {
    const { value } = await it.next();
    if ((value || '').trim() !== word) throw new Error(`expected ${word}, got ${value}`);
  };
  emit({ event: 'ready' });
  await expect('go');
  const tGo = wallNow();
  const cpuGo = cpuSeconds();
  let sent = -1;
  const timer = setInterval(() => {
    if (stats.completed !== sent) { sent = stats.completed; emit({ event: 'count', n: sent }); }
  }, REPORT_EVERY_MS);
  const q = openWorker(args, async (job) => {
    const now = wallNow();
    const data = job.data;
    if (stats.started === 0) stats.firstStart = now;
    stats.started++;
    stats.lastStart = now;
    stats.seenStart.add(data.i);
    if (data.t !== undefined) stats.latencies.push(now - data.t - (data.d || 0));
  }, (job) => {
    stats.completed++;
    stats.lastCompleted = wallNow();
    stats.seenDone.add(job.data.i);
  });
  await expect('stop');
  const cpuStop = cpuSeconds();
  clearInterval(timer);
  emit({ event: 'count', n: stats.completed });
  await q.close();
  lines.close();
  emit({
    event: 'result', count: stats.completed, unique: stats.seenDone.size,
    started: stats.started, unique_started: stats.seenStart.size, t_go: tGo,
    first_start: stats.firstStart, last_start: stats.lastStart,
    last_completed: stats.lastCompleted, cpu_s: cpuStop - cpuGo, rss_mb: peakRssMb(),
    latencies: stats.latencies, pid: process.pid,
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  lib = require(args.bullModule);
  isBullMQ = args.bullModule === 'bullmq';
  if (args.mode === 'enqueue' || args.mode === 'fill') await enqueue(args);
  else if (args.mode === 'produce') await produce(args);
  else if (args.mode === 'worker') await worker(args);
  else throw new Error(`unknown mode ${args.mode}`);
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
