#!/usr/bin/env node
// The Node side of pyqueue's migration tests (Bull 4 -> BullMQ 6): a Bull
// producer that keeps adding while the migration runs, and bull-board's
// BullMQ adapter over the migrated queues.
//
// Usage: node fleet.js '<json-config>'
// It needs no node_modules of its own: NODE_PATH names tests/interop/node's
// (Bull 4.12 as "bull412") and tests/bullmq/node's (BullMQ, bull-board, express).
//
// Actions:
//   produce: {bull, redisUrl, queue, prefix?, count, intervalMs, repeats?: [{name, data, opts}]}
//     declares the repeatable jobs, then adds `count` jobs one by one, their kind by
//     n % 6: plain, delayed (0.5-3 s), prioritised (1-3), custom id "order-<n>",
//     digit-only custom id, custom id with ':'. Prints {"event":"acked", n, id, kind}
//     once each add resolved, then {"event":"done"}.
//   declare: {bull, redisUrl, queue, prefix?, repeats} what a restarted Bull producer
//     does at start-up: declare its repeatable jobs again. Prints {"event":"declared"}.
//   board: {redisUrl, prefix, queues: [...], port?} bull-board's HTTP API with
//     BullMQAdapter over those BullMQ queues; prints {"event":"listening", port};
//     serves until stdin closes or SIGTERM.
// Output: one JSON object per stdout line, each with `event` and `t`.
'use strict';

const fs = require('fs');

function emit(event, fields) {
  process.stdout.write(JSON.stringify({ event, t: Date.now(), ...fields }) + '\n');
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

function kindOf(n) {
  return ['plain', 'delayed', 'prioritized', 'custom', 'digits', 'colon'][n % 6];
}

function optionsOf(n, kind) {
  switch (kind) {
    case 'delayed':
      return { delay: 500 + (n * 37) % 2500 };
    case 'prioritized':
      return { priority: 1 + (n % 3) };
    case 'custom':
      return { jobId: `order-${n}` };
    case 'digits':
      return { jobId: String(900000 + n) };
    case 'colon':
      return { jobId: `ref:${n}` };
    default:
      return {};
  }
}

function bullQueue(cfg) {
  const Queue = require(cfg.bull || 'bull412');
  return new Queue(cfg.queue, cfg.redisUrl, { prefix: cfg.prefix || 'bull' });
}

async function declare(queue, repeats) {
  for (const r of repeats || []) {
    await queue.add(r.name, r.data || {}, r.opts);
  }
}

async function actionProduce(cfg) {
  const queue = bullQueue(cfg);
  await declare(queue, cfg.repeats);
  emit('declared', {});
  for (let n = 0; n < cfg.count; n++) {
    const kind = kindOf(n);
    const job = await queue.add('stream', { n, kind }, optionsOf(n, kind));
    emit('acked', { n, id: String(job.id), kind });
    if (cfg.intervalMs) await sleep(cfg.intervalMs);
  }
  await queue.close();
  emit('done', {});
}

async function actionDeclare(cfg) {
  const queue = bullQueue(cfg);
  await declare(queue, cfg.repeats);
  await queue.close();
  emit('declared', {});
}

async function actionBoard(cfg) {
  const express = require('express');
  const { Queue } = require('bullmq');
  const { createBullBoard } = require('@bull-board/api');
  const { BullMQAdapter } = require('@bull-board/api/bullMQAdapter');
  const { ExpressAdapter } = require('@bull-board/express');
  const url = new URL(cfg.redisUrl);
  const connection = { host: url.hostname, port: Number(url.port || 6379) };
  const queues = cfg.queues.map(name => new Queue(name, { connection, prefix: cfg.prefix }));
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('/');
  createBullBoard({ queues: queues.map(q => new BullMQAdapter(q)), serverAdapter });
  const app = express();
  app.use('/', serverAdapter.getRouter());
  const server = await new Promise((resolve, reject) => {
    const s = app.listen(cfg.port || 0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  const shutdown = async () => {
    server.close();
    if (typeof server.closeAllConnections === 'function') server.closeAllConnections();
    await Promise.allSettled(queues.map(q => q.close()));
    process.exit(0);
  };
  process.once('SIGTERM', shutdown);
  process.stdin.once('end', shutdown);
  process.stdin.resume();
  emit('listening', { port: server.address().port });
}

const ACTIONS = { produce: actionProduce, declare: actionDeclare, board: actionBoard };

async function main() {
  const cfg = JSON.parse(process.argv[2] !== undefined ? process.argv[2] : fs.readFileSync(0));
  const action = ACTIONS[cfg.action];
  if (!action) throw new Error(`unknown action ${JSON.stringify(cfg.action)}`);
  await action(cfg);
}

main().catch(err => {
  emit('fatal', { message: err && err.message, stack: err && err.stack });
  process.exit(1);
});
