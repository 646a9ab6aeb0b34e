#!/usr/bin/env node
// Node BullMQ driver for pyqueue's BullMQ-mode interop tests.
//
// Usage: node driver.js '<json-config>'   (or the JSON config on stdin)
//
// Common config: {bullmq: "bullmq"|"bullmq60"|"bullmq63", redisUrl, queue, prefix?: "bull",
//                 action, ...}
// Output: one JSON object per stdout line, each with `event` and `t` (Date.now()).
// Actions: add, addBulk, flow, process, state, getJobs, listen, admin, board (see each).
// Exit code 0 on success; an unexpected error prints {"event":"fatal",...} and exits 1.
// A failing call under test (removing a locked job, say) is reported as
// {"event":"result","ok":false,"error":...} and still exits 0.
'use strict';

const fs = require('fs');

function emit(event, fields) {
  process.stdout.write(JSON.stringify({ event, t: Date.now(), ...fields }) + '\n');
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

function errorText(err) {
  return err && err.message !== undefined ? err.message : String(err);
}

function library(cfg) {
  return require(cfg.bullmq || 'bullmq');
}

function connection(cfg) {
  const url = new URL(cfg.redisUrl);
  const db = url.pathname && url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    db,
    maxRetriesPerRequest: null
  };
}

function queueOptions(cfg) {
  return { connection: connection(cfg), prefix: cfg.prefix || 'bull' };
}

function openQueue(cfg) {
  if (!cfg.queue) throw new Error('config.queue is required');
  const { Queue } = library(cfg);
  return new Queue(cfg.queue, { ...queueOptions(cfg), ...(cfg.queueOpts || {}) });
}

const orNull = value => (value === undefined ? null : value);

async function describeJob(queue, id) {
  const job = await queue.getJob(id);
  if (!job) return { id, json: null, state: null };
  const json = job.toJSON();
  return { id, json: JSON.parse(JSON.stringify(json)), state: await job.getState() };
}

// ---------------------------------------------------------------------------
// Actions

async function actionAdd(queue, cfg) {
  const ids = [];
  for (const job of cfg.jobs || []) {
    const data = job.data === undefined ? {} : job.data;
    const added = await queue.add(job.name || 'job', data, job.opts || {});
    ids.push(added.id);
  }
  emit('added', { ids });
}

async function actionAddBulk(queue, cfg) {
  const jobs = (cfg.jobs || []).map(j => ({
    name: j.name || 'job',
    data: j.data === undefined ? {} : j.data,
    opts: j.opts || {}
  }));
  const added = await queue.addBulk(jobs);
  emit('added', { ids: added.map(j => j.id) });
}

// flow: {flow: {name, queueName, data, opts, children: [...]}} (FlowProducer.add)
async function actionFlow(queue, cfg) {
  const { FlowProducer } = library(cfg);
  const producer = new FlowProducer(queueOptions(cfg));
  try {
    const tree = await producer.add(cfg.flow);
    const ids = [];
    const walk = node => {
      ids.push({ queue: node.job.queueName, id: node.job.id, name: node.job.name });
      for (const child of node.children || []) walk(child);
    };
    walk(tree);
    emit('added', { ids });
  } finally {
    await producer.close();
  }
}

// Run one job as its behaviour says; the handler's resolved value is the result.
async function runBehaviour(job, b, lib) {
  for (const line of b.log || []) await job.log(line);
  for (const p of b.progress || []) await job.updateProgress(p);
  if (b.sleepMs) await sleep(b.sleepMs);
  if (b.hang) return new Promise(() => {});
  if (b.fail !== undefined) throw new Error(b.fail);
  if (b.unrecoverable !== undefined) {
    throw new lib.UnrecoverableError(b.unrecoverable);
  }
  if (b.failTimes !== undefined && job.attemptsMade < b.failTimes) {
    throw new Error(b.message || `fail ${job.attemptsMade + 1}`);
  }
  if (b.childrenValues) return job.getChildrenValues();
  return b.return === undefined ? null : b.return;
}

async function actionProcess(queue, cfg) {
  const { Worker } = library(cfg);
  const behaviours = cfg.behaviour || {};
  const until = cfg.until;
  const timeoutMs = cfg.timeoutMs === undefined ? 30000 : cfg.timeoutMs;
  const stats = { completed: 0, failed: 0, finalFailed: 0, stalled: 0 };
  let finish;
  const finished = new Promise(resolve => (finish = resolve));
  const checkUntil = () => {
    if (until !== undefined && stats.completed + stats.finalFailed >= until) finish('until');
  };
  const handler = async job => {
    emit('processing', {
      id: job.id,
      name: job.name,
      data: job.data,
      opts: job.opts,
      attemptsMade: job.attemptsMade,
      attemptsStarted: job.attemptsStarted,
      timestamp: job.timestamp,
      delay: job.delay,
      priority: job.priority,
      processedOn: job.processedOn,
      parentKey: orNull(job.parentKey),
      repeatJobKey: orNull(job.repeatJobKey),
      pid: process.pid
    });
    const b = behaviours[job.name] || behaviours['*'] || {};
    return runBehaviour(job, b, library(cfg));
  };
  const worker = new Worker(cfg.queue, handler, {
    ...queueOptions(cfg),
    concurrency: cfg.concurrency || 1,
    autorun: false,
    ...(cfg.workerOpts || {})
  });
  const info = job => ({ id: job.id, name: job.name, attemptsMade: job.attemptsMade });
  worker.on('completed', (job, result) => {
    stats.completed++;
    emit('completed', { ...info(job), result: orNull(result), finishedOn: job.finishedOn });
    checkUntil();
  });
  worker.on('failed', (job, err) => {
    stats.failed++;
    const final = Boolean(job && job.finishedOn);
    if (final) stats.finalFailed++;
    emit('failed', { ...(job ? info(job) : {}), reason: errorText(err), final });
    checkUntil();
  });
  worker.on('stalled', id => {
    stats.stalled++;
    emit('stalled', { id });
  });
  worker.on('error', err => emit('error', { message: errorText(err) }));
  process.once('SIGTERM', () => finish('signal'));
  process.once('SIGINT', () => finish('signal'));
  const running = worker.run();
  await worker.waitUntilReady();
  emit('ready', { pid: process.pid });
  const timer = setTimeout(() => finish('timeout'), timeoutMs);
  const reason = await finished;
  clearTimeout(timer);
  await worker.close(cfg.force !== false);
  await running.catch(() => {});
  emit('done', { reason, ...stats });
}

const ALL_TYPES = [
  'active', 'completed', 'delayed', 'failed', 'prioritized', 'waiting', 'waiting-children',
  'paused'
];

async function actionState(queue, cfg) {
  const jobs = [];
  for (const id of cfg.ids || []) jobs.push(await describeJob(queue, id));
  emit('state', {
    counts: await queue.getJobCounts(...(cfg.types || ALL_TYPES)),
    isPaused: await queue.isPaused(),
    jobs
  });
}

async function actionGetJobs(queue, cfg) {
  const jobs = await queue.getJobs(
    cfg.types || ALL_TYPES,
    cfg.start === undefined ? 0 : cfg.start,
    cfg.end === undefined ? -1 : cfg.end,
    cfg.asc === undefined ? false : cfg.asc
  );
  emit('jobs', { ids: jobs.filter(Boolean).map(j => j.id) });
}

// listen: a QueueEvents; prints every event it emits, with its args.
const STREAM_EVENTS = [
  'added', 'waiting', 'active', 'completed', 'failed', 'progress', 'delayed', 'stalled',
  'paused', 'resumed', 'drained', 'removed', 'deduplicated', 'duplicated',
  'retries-exhausted', 'waiting-children', 'cleaned'
];

async function actionListen(queue, cfg) {
  const { QueueEvents } = library(cfg);
  const events = new QueueEvents(cfg.queue, {
    ...queueOptions(cfg),
    ...(cfg.lastEventId ? { lastEventId: cfg.lastEventId } : {})
  });
  const until = cfg.until;
  const timeoutMs = cfg.timeoutMs === undefined ? 30000 : cfg.timeoutMs;
  let count = 0;
  let finish;
  const finished = new Promise(resolve => (finish = resolve));
  for (const name of cfg.events || STREAM_EVENTS) {
    events.on(name, (args, id) => {
      emit('qe', { name, args: orNull(args), id: orNull(id) });
      count++;
      if (until !== undefined && count >= until) finish('until');
    });
  }
  await events.waitUntilReady();
  emit('ready', { pid: process.pid });
  process.once('SIGTERM', () => finish('signal'));
  const timer = setTimeout(() => finish('timeout'), timeoutMs);
  const reason = await finished;
  clearTimeout(timer);
  await events.close();
  emit('done', { reason, count });
}

async function jobOrThrow(queue, id) {
  const job = await queue.getJob(id);
  if (!job) throw new Error(`job ${id} not found`);
  return job;
}

// admin: one management call; `op` selects it, other fields are its arguments.
const ADMIN_OPS = {
  pause: q => q.pause(),
  resume: q => q.resume(),
  isPaused: q => q.isPaused(),
  clean: (q, c) => q.clean(c.grace || 0, c.limit || 0, c.state || 'completed'),
  drain: (q, c) => q.drain(Boolean(c.delayed)),
  obliterate: (q, c) => q.obliterate({ force: Boolean(c.force) }),
  retryJobs: (q, c) => q.retryJobs(c.opts || {}),
  promoteJobs: q => q.promoteJobs(),
  retry: async (q, c) => (await jobOrThrow(q, c.id)).retry(c.state || 'failed', c.opts || {}),
  promote: async (q, c) => (await jobOrThrow(q, c.id)).promote(),
  remove: async (q, c) => (await jobOrThrow(q, c.id)).remove(c.opts || {}),
  changePriority: async (q, c) => (await jobOrThrow(q, c.id)).changePriority(c.opts),
  changeDelay: async (q, c) => (await jobOrThrow(q, c.id)).changeDelay(c.delay),
  updateProgress: async (q, c) => (await jobOrThrow(q, c.id)).updateProgress(c.progress),
  log: async (q, c) => (await jobOrThrow(q, c.id)).log(c.text),
  updateData: async (q, c) => (await jobOrThrow(q, c.id)).updateData(c.data),
  getJobLogs: (q, c) => q.getJobLogs(c.id, c.start, c.end, c.asc),
  getMetrics: (q, c) => q.getMetrics(c.type || 'completed', c.start, c.end),
  getCountsPerPriority: (q, c) => q.getCountsPerPriority(c.priorities || []),
  getDeduplicationJobId: (q, c) => q.getDeduplicationJobId(c.dedupId),
  removeDeduplicationKey: (q, c) => q.removeDeduplicationKey(c.dedupId),
  setGlobalConcurrency: (q, c) => q.setGlobalConcurrency(c.concurrency),
  setGlobalRateLimit: (q, c) => q.setGlobalRateLimit(c.max, c.duration),
  getVersion: q => q.getVersion(),
  getDependencies: async (q, c) => (await jobOrThrow(q, c.id)).getDependencies(),
  getChildrenValues: async (q, c) => (await jobOrThrow(q, c.id)).getChildrenValues(),
  upsertJobScheduler: async (q, c) => {
    const job = await q.upsertJobScheduler(c.schedulerId, c.repeat, c.template);
    return job ? { id: job.id, delay: job.delay, timestamp: job.timestamp } : null;
  },
  removeJobScheduler: (q, c) => q.removeJobScheduler(c.schedulerId),
  getJobScheduler: (q, c) => q.getJobScheduler(c.schedulerId),
  getJobSchedulers: q => q.getJobSchedulers()
};

async function actionAdmin(queue, cfg) {
  const op = ADMIN_OPS[cfg.op];
  if (!op) throw new Error(`unknown admin op ${JSON.stringify(cfg.op)}`);
  try {
    const value = await op(queue, cfg);
    emit('result', { op: cfg.op, ok: true, value: orNull(value) });
  } catch (err) {
    emit('result', { op: cfg.op, ok: false, error: errorText(err) });
  }
}

// board: bull-board's HTTP API (BullMQAdapter) over this queue, on 127.0.0.1 and a
// free port unless cfg.port; prints {"event":"listening", port}, serves until SIGTERM.
async function actionBoard(queue, cfg) {
  const { createBullBoard } = require('@bull-board/api');
  const { BullMQAdapter } = require('@bull-board/api/bullMQAdapter');
  const { ExpressAdapter } = require('@bull-board/express');
  const express = require('express');
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('/');
  createBullBoard({ queues: [new BullMQAdapter(queue)], serverAdapter });
  const app = express();
  app.use('/', serverAdapter.getRouter());
  const server = await new Promise((resolve, reject) => {
    const s = app.listen(cfg.port || 0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  const stopped = new Promise(resolve => process.once('SIGTERM', resolve));
  emit('listening', { port: server.address().port });
  await stopped;
  server.close();
  if (typeof server.closeAllConnections === 'function') server.closeAllConnections();
  emit('done', { reason: 'signal' });
}

const ACTIONS = {
  board: actionBoard,
  add: actionAdd,
  addBulk: actionAddBulk,
  flow: actionFlow,
  process: actionProcess,
  state: actionState,
  getJobs: actionGetJobs,
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
    await queue.close();
  }
}

main().then(
  () => process.exit(0),
  err => {
    emit('fatal', { message: errorText(err), stack: err && err.stack });
    process.exit(1);
  }
);
