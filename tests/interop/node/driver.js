#!/usr/bin/env node
// Node Bull driver for pyqueue's interop tests.
//
// Usage: node driver.js '<json-config>'   (or the JSON config on stdin)
//
// Common config: {bull: "bull"|"bull412"|"bull414"|"bull415", redisUrl, queue, prefix?: "bull", action, ...}
// clusterNodes?: [{host, port}, ...] connects to a Redis Cluster instead of redisUrl.
// Output: one JSON object per line on stdout, each with `event` and `t` (Date.now()).
// Exit code 0 on success; on an unexpected error prints {"event":"fatal",...} and exits 1.
// Expected failures of the call under test (e.g. removing a locked job) are reported as
// {"event":"result","ok":false,"error":...} and still exit 0.
'use strict';

const fs = require('fs');

function emit(event, fields) {
  process.stdout.write(JSON.stringify({ event, t: Date.now(), ...fields }) + '\n');
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

function errorText(err) {
  return err && err.message !== undefined ? err.message : String(err);
}

// Turn `backoffStrategies: {name: formula}` into Bull strategy functions.
// Formulas: {multiplier: m} -> attemptsMade * m; {value: v} -> v (e.g. -1 or 0);
// {sequence: [d1, d2, ...]} -> d[attemptsMade - 1] (last entry repeats).
function makeBackoffStrategies(spec) {
  const strategies = {};
  for (const [name, f] of Object.entries(spec || {})) {
    strategies[name] = attemptsMade => {
      if (f.multiplier !== undefined) return attemptsMade * f.multiplier;
      if (f.value !== undefined) return f.value;
      if (f.sequence !== undefined) {
        return f.sequence[Math.min(attemptsMade, f.sequence.length) - 1];
      }
      throw new Error(`backoff strategy ${name}: unknown formula ${JSON.stringify(f)}`);
    };
  }
  return strategies;
}

function openQueue(cfg) {
  if (!cfg.queue) throw new Error('config.queue is required');
  if (!cfg.redisUrl) throw new Error('config.redisUrl is required');
  const Queue = require(cfg.bull || 'bull');
  const settings = { ...(cfg.settings || {}) };
  if (cfg.backoffStrategies) {
    settings.backoffStrategies = makeBackoffStrategies(cfg.backoffStrategies);
  }
  const opts = { prefix: cfg.prefix || 'bull', settings };
  if (cfg.limiter) opts.limiter = cfg.limiter;
  if (cfg.metrics) opts.metrics = cfg.metrics;
  if (cfg.clusterNodes) {
    // Redis Cluster, the way Bull documents it: ioredis Cluster clients from
    // createClient, and a hash-tag prefix so the queue stays in one slot.
    const Redis = require('ioredis');
    opts.createClient = () =>
      new Redis.Cluster(cfg.clusterNodes, {
        redisOptions: { maxRetriesPerRequest: null, enableReadyCheck: false }
      });
    return new Queue(cfg.queue, opts);
  }
  return new Queue(cfg.queue, cfg.redisUrl, opts);
}

function addOne(queue, job) {
  return job.name === undefined
    ? queue.add(job.data === undefined ? {} : job.data, job.opts || {})
    : queue.add(job.name, job.data === undefined ? {} : job.data, job.opts || {});
}

async function getJobOrThrow(queue, id) {
  const job = await queue.getJob(id);
  if (!job) throw new Error(`job ${id} not found`);
  return job;
}

// ---------------------------------------------------------------------------
// Actions

async function actionAdd(queue, cfg) {
  const ids = [];
  for (const job of cfg.jobs || []) {
    ids.push((await addOne(queue, job)).id);
  }
  emit('added', { ids });
}

async function actionAddBulk(queue, cfg) {
  const jobs = (cfg.jobs || []).map(j => ({
    name: j.name,
    data: j.data === undefined ? {} : j.data,
    opts: j.opts || {}
  }));
  const added = await queue.addBulk(jobs);
  emit('added', { ids: added.map(j => j.id) });
}

// Run one job according to its behaviour; the handler's resolved value is the result.
async function runBehaviour(job, b) {
  for (const line of b.log || []) await job.log(line);
  for (const p of b.progress || []) await job.progress(p);
  if (b.sleepMs) await sleep(b.sleepMs);
  if (b.hang) return new Promise(() => {});
  if (b.fail !== undefined) throw new Error(b.fail);
  if (b.failTimes !== undefined && job.attemptsMade < b.failTimes) {
    throw new Error(b.message || `fail ${job.attemptsMade + 1}`);
  }
  return b.return;
}

async function actionProcess(queue, cfg) {
  const behaviours = cfg.behaviour || {};
  const until = cfg.until;
  const timeoutMs = cfg.timeoutMs === undefined ? 30000 : cfg.timeoutMs;
  const stats = { completed: 0, failed: 0, finalFailed: 0, stalled: 0 };
  let finish;
  const finished = new Promise(resolve => (finish = resolve));
  const checkUntil = () => {
    if (until !== undefined && stats.completed + stats.finalFailed >= until) finish('until');
  };
  const jobInfo = job => ({ id: job.id, name: job.name, attemptsMade: job.attemptsMade });

  queue.on('completed', (job, result) => {
    stats.completed++;
    emit('completed', {
      ...jobInfo(job),
      result: result === undefined ? null : result,
      processedOn: job.processedOn,
      finishedOn: job.finishedOn,
      pid: process.pid
    });
    checkUntil();
  });
  queue.on('failed', (job, err) => {
    // finishedOn is only set when the job went to the failed set (no retry left).
    const final = Boolean(job.finishedOn);
    stats.failed++;
    if (final) stats.finalFailed++;
    emit('failed', { ...jobInfo(job), reason: errorText(err), final, pid: process.pid });
    checkUntil();
  });
  queue.on('stalled', job => {
    stats.stalled++;
    emit('stalled', { id: job.id, pid: process.pid });
  });
  queue.on('error', err => emit('error', { message: errorText(err) }));
  queue.on('lock-extension-failed', (job, err) =>
    emit('lock-extension-failed', { id: job.id, message: errorText(err) })
  );

  const handler = async job => {
    emit('processing', {
      id: job.id,
      name: job.name,
      data: job.data,
      opts: job.opts,
      attemptsMade: job.attemptsMade,
      timestamp: job.timestamp,
      delay: job.delay,
      pid: process.pid
    });
    const b = behaviours[job.name] || behaviours['*'] || {};
    return runBehaviour(job, b);
  };
  const concurrency = cfg.concurrency || 1;
  if (cfg.names) {
    for (const name of cfg.names) queue.process(name, concurrency, handler);
  } else {
    queue.process('*', concurrency, handler);
  }
  await queue.isReady();
  emit('ready', { pid: process.pid });
  process.once('SIGTERM', () => finish('signal'));
  process.once('SIGINT', () => finish('signal'));

  const timer = setTimeout(() => finish('timeout'), timeoutMs);
  const reason = await finished;
  clearTimeout(timer);
  // Do not wait for active jobs: a hanging handler would block the close forever.
  await queue.close(true);
  emit('done', { reason, ...stats });
}

async function actionCounts(queue) {
  const [counts, completed, failed, delayed, active, waiting, paused, isPaused] =
    await Promise.all([
      queue.getJobCounts(),
      queue.getCompletedCount(),
      queue.getFailedCount(),
      queue.getDelayedCount(),
      queue.getActiveCount(),
      queue.getWaitingCount(),
      queue.getPausedCount(),
      queue.isPaused()
    ]);
  emit('counts', {
    counts,
    completed,
    failed,
    delayed,
    active,
    waiting,
    paused,
    isPaused
  });
}

async function actionGetJob(queue, cfg) {
  for (const id of cfg.ids || []) {
    const job = await queue.getJob(id);
    emit('job', {
      id,
      json: job ? job.toJSON() : null,
      state: job ? await job.getState() : null
    });
  }
}

async function actionGetJobs(queue, cfg) {
  const jobs = await queue.getJobs(
    cfg.types || ['waiting', 'active', 'completed', 'failed', 'delayed', 'paused'],
    cfg.start === undefined ? 0 : cfg.start,
    cfg.end === undefined ? -1 : cfg.end,
    cfg.asc === undefined ? false : cfg.asc
  );
  emit('jobs', { jobs: jobs.filter(Boolean).map(j => j.toJSON()) });
}

async function actionFinished(queue, cfg) {
  let job;
  if (cfg.id !== undefined) {
    job = await getJobOrThrow(queue, cfg.id);
  } else {
    job = await addOne(queue, cfg.job || {});
    emit('added', { ids: [job.id] });
  }
  const timeoutMs = cfg.timeoutMs === undefined ? 30000 : cfg.timeoutMs;
  let timer;
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error('driver: finished() timed out')), timeoutMs);
  });
  try {
    const value = await Promise.race([job.finished(), timeout]);
    emit('finished', { id: job.id, ok: true, value: value === undefined ? null : value });
  } catch (err) {
    emit('finished', { id: job.id, ok: false, error: errorText(err) });
  } finally {
    clearTimeout(timer);
  }
}

const GLOBAL_EVENTS = [
  'waiting',
  'active',
  'completed',
  'failed',
  'progress',
  'paused',
  'resumed',
  'drained',
  'stalled'
];

async function actionListen(queue, cfg) {
  const names = cfg.events || GLOBAL_EVENTS;
  const until = cfg.until;
  const timeoutMs = cfg.timeoutMs === undefined ? 30000 : cfg.timeoutMs;
  let count = 0;
  let finish;
  const finished = new Promise(resolve => (finish = resolve));
  await queue.isReady();
  const registrations = [];
  for (const name of names) {
    const full = `global:${name}`;
    // Bull emits `registered:<event>` once the (P)SUBSCRIBE is acknowledged.
    registrations.push(new Promise(resolve => queue.once(`registered:${full}`, resolve)));
    queue.on(full, (...args) => {
      emit(full, { args: args.map(a => (a === undefined ? null : a)) });
      count++;
      if (until !== undefined && count >= until) finish('until');
    });
  }
  await Promise.all(registrations);
  emit('ready', { pid: process.pid });
  process.once('SIGTERM', () => finish('signal'));
  process.once('SIGINT', () => finish('signal'));
  const timer = setTimeout(() => finish('timeout'), timeoutMs);
  const reason = await finished;
  clearTimeout(timer);
  emit('done', { reason, count });
}

// admin: one management call; `op` selects it, other fields are its arguments.
const ADMIN_OPS = {
  pause: q => q.pause(),
  resume: q => q.resume(),
  isPaused: q => q.isPaused(),
  clean: (q, c) => q.clean(c.grace || 0, c.state || 'completed', c.limit),
  obliterate: (q, c) => q.obliterate({ force: Boolean(c.force) }),
  empty: q => q.empty(),
  retry: async (q, c) => (await getJobOrThrow(q, c.id)).retry(),
  promote: async (q, c) => (await getJobOrThrow(q, c.id)).promote(),
  remove: async (q, c) => (await getJobOrThrow(q, c.id)).remove(),
  removeJobs: (q, c) => q.removeJobs(c.pattern),
  retryJobs: (q, c) => q.retryJobs(c.opts || {}),
  addLog: async (q, c) => (await getJobOrThrow(q, c.id)).log(c.text),
  getJobLogs: (q, c) => q.getJobLogs(c.id, c.start, c.end, c.asc),
  updateProgress: async (q, c) => (await getJobOrThrow(q, c.id)).progress(c.progress),
  update: async (q, c) => (await getJobOrThrow(q, c.id)).update(c.data),
  getCountsPerPriority: (q, c) => {
    if (typeof q.getCountsPerPriority !== 'function') {
      throw new Error('getCountsPerPriority is not available in this Bull version');
    }
    return q.getCountsPerPriority(c.priorities || []);
  },
  getMetrics: (q, c) => q.getMetrics(c.type || 'completed', c.start, c.end),
  getRepeatableJobs: (q, c) => q.getRepeatableJobs(c.start, c.end, c.asc),
  removeRepeatableByKey: (q, c) => q.removeRepeatableByKey(c.key),
  removeRepeatable: (q, c) =>
    c.name === undefined
      ? q.removeRepeatable(c.repeat)
      : q.removeRepeatable(c.name, c.repeat),
  getWorkers: q => q.getWorkers(),
  // Job#getState of a job object with this id, whether or not its hash exists.
  stateOf: (q, c) => {
    const Job = require(c.bull || 'bull').Job;
    const job = new Job(q, 'probe', {}, {});
    job.id = c.id;
    return job.getState();
  }
};

async function actionAdmin(queue, cfg) {
  const op = ADMIN_OPS[cfg.op];
  if (!op) throw new Error(`unknown admin op ${JSON.stringify(cfg.op)}`);
  try {
    const value = await op(queue, cfg);
    emit('result', { op: cfg.op, ok: true, value: value === undefined ? null : value });
  } catch (err) {
    emit('result', { op: cfg.op, ok: false, error: errorText(err) });
  }
}

const ACTIONS = {
  add: actionAdd,
  addBulk: actionAddBulk,
  process: actionProcess,
  counts: actionCounts,
  getJob: actionGetJob,
  getJobs: actionGetJobs,
  finished: actionFinished,
  listen: actionListen,
  admin: actionAdmin
};

// ---------------------------------------------------------------------------

function readConfig() {
  const text = process.argv[2] !== undefined ? process.argv[2] : fs.readFileSync(0, 'utf8');
  return JSON.parse(text);
}

async function main() {
  const cfg = readConfig();
  const action = ACTIONS[cfg.action];
  if (!action) throw new Error(`unknown action ${JSON.stringify(cfg.action)}`);
  const queue = openQueue(cfg);
  try {
    await action(queue, cfg);
  } finally {
    if (cfg.action !== 'process') await queue.close();
  }
}

main().then(
  () => process.exit(0),
  err => {
    emit('fatal', { message: errorText(err), stack: err && err.stack });
    process.exit(1);
  }
);
