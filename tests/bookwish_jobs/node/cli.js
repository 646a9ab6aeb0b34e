#!/usr/bin/env node
// Test driver for app.js: node cli.js '<json config>'. Prints one JSON object per line.
//
// {action: "produce", redisUrl, databaseUrl?, prismaSchema?, schedule?, notifications?: [data],
//  syncStores?: [storeId], cleanup?, digest?, storeDigest?: [[storeId, orderId, special]],
//  opsDigest?: [orderId]}
//     Start-up scheduling (when `schedule`), then the producers' calls, in that order.
//     jobOptions: {orderDigest: {backoff: ...}} overrides the design's options (tests that
//     cannot wait for a 60-second backoff). databaseUrl (Prisma's DATABASE_URL) comes with prismaSchema, the schema.prisma the
//     Node app's client was generated from.
// {action: "repeatables", redisUrl}   getRepeatableJobs() of every queue.
// {action: "work", redisUrl, expect?, workMs?, maxSeconds?, design?}
//     Node workers with queue.process(fn) on all four queues, until `expect` jobs
//     completed, SIGTERM, or maxSeconds. Each job is recorded ("processed"); with
//     design: {databaseUrl, prismaSchema, expoUrl?, smtpUrl?, opsEmail?, deliveryHelper?,
//     ownSchema?} the design's processors then run it (app.js).
'use strict';

const app = require('./app');

function emit(event, fields) {
  process.stdout.write(JSON.stringify({ event, t: Date.now(), ...fields }) + '\n');
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function closeAll(queues) {
  await Promise.all(Object.values(queues).map(q => q.close()));
}

async function produce(cfg) {
  for (const [key, options] of Object.entries(cfg.jobOptions || {})) {
    Object.assign(app.JOB_OPTIONS[key], options);
  }
  const queues = app.openQueues(cfg.redisUrl);
  const db = cfg.databaseUrl ? app.openDatabase(cfg.databaseUrl, cfg.prismaSchema) : null;
  if (db) await db.client.connect();
  try {
    if (cfg.schedule) {
      // Without a database there are no stores to schedule (some tests need none).
      const stores = db ? await app.scheduleSquareSyncs(queues, db.prisma) : [];
      await app.scheduleReservationCleanup(queues);
      await app.scheduleOrderDigest(queues);
      emit('scheduled', { stores });
    }
    for (const data of cfg.notifications || []) {
      const job = await app.queueNotification(queues, data);
      emit('added', { queue: 'notifications', jobId: String(job.id), ref: data.notificationId });
    }
    for (const storeId of cfg.syncStores || []) {
      const job = await app.triggerStoreSync(queues, storeId);
      emit('added', { queue: 'square-sync', jobId: String(job.id), ref: storeId });
    }
    for (const [storeId, orderId, special] of cfg.storeDigest || []) {
      emit('digest_entry', { id: await app.queueStoreOrderForDigest(db.prisma, storeId, orderId, special) });
    }
    for (const orderId of cfg.opsDigest || []) {
      emit('ops_entry', { id: await app.queueOrderForOpsDigest(db.prisma, orderId) });
    }
    if (cfg.cleanup) {
      const job = await app.runReservationCleanup(queues);
      emit('added', { queue: 'reservation-cleanup', jobId: String(job.id) });
    }
    if (cfg.digest) {
      const job = await app.runOrderDigest(queues);
      emit('added', { queue: 'order-digest', jobId: String(job.id) });
    }
    if (db) emit('sql', { statements: db.prisma.log });
  } finally {
    if (db) await db.client.end();
    await closeAll(queues);
  }
}

async function repeatables(cfg) {
  const queues = app.openQueues(cfg.redisUrl);
  try {
    for (const queue of Object.values(queues)) {
      const found = await queue.getRepeatableJobs();
      emit('repeatables', { queue: queue.name, keys: found.map(r => r.key).sort() });
    }
  } finally {
    await closeAll(queues);
  }
}

async function work(cfg) {
  const queues = app.openQueues(cfg.redisUrl);
  const db = cfg.design ? app.openDatabase(cfg.design.databaseUrl, cfg.design.prismaSchema) : null;
  if (db) await db.client.connect();
  const ctx = db ? app.designContext(db, cfg.design) : null;
  let completed = 0;
  let done;
  const finished = new Promise(resolve => { done = resolve; });
  for (const queue of Object.values(queues)) {
    queue.on('completed', (job, result) => {
      emit('completed', { queue: queue.name, jobId: String(job.id), result: result ?? null });
      completed += 1;
      if (cfg.expect && completed >= cfg.expect) done('expected');
    });
    queue.on('failed', (job, err) => {
      emit('failed', { queue: queue.name, jobId: String(job.id), reason: err.message });
    });
  }
  app.startWorkers(queues, async (key, job) => {
    emit('processed', { queue: job.queue.name, jobId: String(job.id), name: job.name,
      data: job.data, opts: job.opts, attemptsMade: job.attemptsMade });
    if (cfg.workMs) await sleep(cfg.workMs);
    return { by: 'node' };
  }, ctx);
  await Promise.all(Object.values(queues).map(q => q.isReady()));
  emit('ready', {});
  process.once('SIGTERM', () => done('signal'));
  const timer = setTimeout(() => done('timeout'), (cfg.maxSeconds || 60) * 1000);
  const why = await finished;
  clearTimeout(timer);
  await closeAll(queues);
  if (db) await db.client.end();
  emit('stopped', { why, completed });
}

const ACTIONS = { produce, repeatables, work };

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const action = ACTIONS[cfg.action];
  if (!action) throw new Error(`unknown action ${cfg.action}`);
  await action(cfg);
}

main().then(() => process.exit(0), err => {
  emit('fatal', { error: err && err.stack ? err.stack : String(err) });
  process.exit(1);
});
