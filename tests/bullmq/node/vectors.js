#!/usr/bin/env node
// Golden vectors for BullMQ 6's job schedulers, from real BullMQ (not from pyqueue).
//
// Usage: node vectors.js redis://127.0.0.1:6379/15 > ../../data/bullmq-schedulers.json
//   (any scratch Redis database: the script FLUSHes the queues it makes, q-vec-*)
//
// cron[]:  {pattern, tz, startDate, now, next[]}: BullMQ's getNextMillis from `now`, then
//          from each result, as a worker chains iterations (cron-parser 5, process TZ=UTC).
// every[]: {steps: [{op, every?, offset?, startDate?, now, jobId, delay, next, offset}]}:
//          Queue.upsertJobScheduler ("upsert") and a worker taking the iteration
//          ("chain", the upsert a Worker makes as the job starts), run on Redis with
//          Date.now() pinned to `now`; `next` is the scheduler's score after the step,
//          `offset` the offset stored in its hash.
'use strict';

process.env.TZ = 'UTC';
const { Queue, getNextMillis, Job } = require('bullmq');
const IORedis = require('ioredis');

const realNow = Date.now;

async function withNow(now, fn) {
  Date.now = () => now;
  try {
    return await fn();
  } finally {
    Date.now = realNow;
  }
}

const CRON = [
  ['*/5 * * * *', null, null, Date.UTC(2026, 0, 15, 10, 2, 30)],
  ['0 9 * * 1-5', 'Europe/Berlin', null, Date.UTC(2026, 4, 1, 6, 0, 0)],
  ['30 2 * * *', 'America/New_York', null, Date.UTC(2026, 2, 7, 12, 0, 0)],
  ['30 1 * * *', 'America/New_York', null, Date.UTC(2026, 9, 31, 12, 0, 0)],
  ['*/20 * * * *', 'America/New_York', null, Date.UTC(2026, 10, 1, 5, 30, 0)],
  ['0 0 1 * *', null, null, Date.UTC(2026, 0, 31, 23, 59, 59)],
  ['*/10 * * * * *', null, null, Date.UTC(2026, 5, 1, 0, 0, 5)],
  ['0 12 * * *', 'Asia/Kolkata', Date.UTC(2026, 6, 1), Date.UTC(2026, 5, 1)],
  ['15 3 * * 0', 'Australia/Sydney', null, Date.UTC(2026, 3, 4, 12, 0, 0)],
  ['0 0 29 2 *', null, null, Date.UTC(2026, 0, 1)],
  ['0 */6 * * *', 'Europe/London', null, Date.UTC(2026, 2, 29, 0, 30, 0)],
];

function cronVectors() {
  return CRON.map(([pattern, tz, startDate, now]) => {
    const opts = { pattern, ...(tz ? { tz } : {}), ...(startDate ? { startDate } : {}) };
    const next = [];
    let at = now;
    for (let i = 0; i < 4; i++) {
      const value = getNextMillis(at, opts);
      next.push(value === undefined ? null : value);
      if (value === undefined) break;
      at = value;
    }
    return { pattern, tz, startDate, now, next };
  });
}

async function schedulerState(client, queue, id) {
  const score = await client.zscore(`bull:${queue.name}:repeat`, id);
  const offset = await client.hget(`bull:${queue.name}:repeat:${id}`, 'offset');
  return { next: score === null ? null : Number(score), offset: offset === null ? null : Number(offset) };
}

// A worker taking the iteration: what Worker.nextJobFromJobData does for a scheduler job.
async function chain(queue, jobId) {
  const job = await Job.fromId(queue, jobId);
  const scheduler = await queue.jobScheduler;
  return scheduler.upsertJobScheduler(job.repeatJobKey, job.opts.repeat, job.name, job.data,
    job.opts, { override: false, producerId: job.id });
}

const T0 = Date.UTC(2026, 0, 15, 10, 0, 0) + 1234;
const EVERY = [
  [['upsert', { every: 60000 }, T0], ['chain', null, T0 + 60000], ['chain', null, T0 + 125000]],
  [['upsert', { every: 60000, offset: 10000 }, T0], ['chain', null, T0 + 70000]],
  [['upsert', { every: 5000, startDate: T0 + 30000 }, T0]],
  [['upsert', { every: 5000, startDate: T0 - 30000 }, T0]],
  [['upsert', { every: 60000 }, T0], ['upsert', { every: 60000 }, T0 + 1000],
   ['upsert', { every: 30000 }, T0 + 2000]],
  [['upsert', { every: 1000 }, T0], ['chain', null, T0 + 500000]],
  [['upsert', { every: 3600000, limit: 2 }, T0], ['chain', null, T0 + 3600000],
   ['chain', null, T0 + 7200000]],
  [['upsert', { pattern: '*/5 * * * *' }, T0], ['chain', null, T0 + 300000]],
  [['upsert', { pattern: '0 9 * * *', tz: 'Europe/Berlin' }, T0]],
];

async function everyVectors(url) {
  const out = [];
  const reader = new IORedis(url);
  let n = 0;
  for (const steps of EVERY) {
    const queue = new Queue(`q-vec-${n++}`, { connection: new IORedis(url, { maxRetriesPerRequest: null }) });
    await queue.obliterate({ force: true }).catch(() => {});
    const id = 'sched';
    let last = null;
    const results = [];
    for (const [op, repeat, now] of steps) {
      const job = await withNow(now, () =>
        op === 'upsert'
          ? queue.upsertJobScheduler(id, repeat, { name: 'tick', data: { n: 1 } })
          : chain(queue, last)
      );
      const state = await schedulerState(reader, queue, id);
      results.push({
        op, repeat, now, jobId: job ? job.id : null,
        delay: job && op === 'upsert' ? job.delay : null, ...state
      });
      if (job) last = job.id;
    }
    out.push({ steps: results });
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
  }
  await reader.quit();
  return out;
}

async function main() {
  const url = process.argv[2];
  if (!url) throw new Error('usage: node vectors.js <redis url of a scratch database>');
  const data = {
    generator: `tests/bullmq/node/vectors.js with bullmq ${require('bullmq/package.json').version}`,
    cron: cronVectors(),
    every: await everyVectors(url)
  };
  process.stdout.write(JSON.stringify(data, null, 1) + '\n');
}

main().then(() => process.exit(0), err => {
  console.error(err);
  process.exit(1);
});
