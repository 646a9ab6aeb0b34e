#!/usr/bin/env node
// bull-board (the Bull dashboard's HTTP API and UI) over Bull 4.16.x queues, for
// pyqueue's interop tests: tests/interop/test_bull_board.py fills queues with
// pyqueue, starts this server on them and calls bull-board's real routes, to check
// that Bull's own dashboard sees pyqueue's jobs as it sees Node-made ones.
//
// Usage: node board.js <redisUrl> <port> <queue> [<queue> ...]
//   port 0 picks a free port. Queues use Bull's default key prefix `bull`.
// Output: one JSON line {"event":"listening","port":N,"queues":[...]} once it serves.
// Serves until stdin closes (so it never outlives the test that started it) or it
// gets SIGTERM/SIGINT; then closes the queues and exits 0. Bad arguments exit 2; a
// start-up error prints {"event":"fatal",...} and exits 1.
//
// Only bull-board's own routes are mounted (at /, so the API is under /api/...).
// The Bull queues here never call process(): this server does not run or promote
// jobs by itself, only the requests made to bull-board change anything.
'use strict';

const express = require('express');
const Queue = require('bull');
const { createBullBoard } = require('@bull-board/api');
const { BullAdapter } = require('@bull-board/api/bullAdapter');
const { ExpressAdapter } = require('@bull-board/express');

function emit(event, fields) {
  process.stdout.write(JSON.stringify({ event, t: Date.now(), ...fields }) + '\n');
}

function parseArgs(argv) {
  const [redisUrl, portText, ...names] = argv;
  const port = Number(portText);
  if (!redisUrl || !Number.isInteger(port) || port < 0 || port > 65535 || names.length === 0) {
    process.stderr.write('usage: node board.js <redisUrl> <port|0> <queue> [<queue> ...]\n');
    process.exit(2);
  }
  return { redisUrl, port, names };
}

function listen(app, port) {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, '127.0.0.1', () => resolve(server));
    server.once('error', reject);
  });
}

async function main() {
  const { redisUrl, port, names } = parseArgs(process.argv.slice(2));
  const queues = names.map(name => new Queue(name, redisUrl, { prefix: 'bull' }));
  await Promise.all(queues.map(q => q.isReady()));

  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('/');
  createBullBoard({ queues: queues.map(q => new BullAdapter(q)), serverAdapter });
  const app = express();
  app.use('/', serverAdapter.getRouter());
  const server = await listen(app, port);

  let closing = false;
  const shutdown = async why => {
    if (closing) return;
    closing = true;
    server.close();
    if (typeof server.closeAllConnections === 'function') server.closeAllConnections();
    await Promise.allSettled(queues.map(q => q.close()));
    emit('closed', { why });
    process.exit(0);
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.stdin.once('end', () => shutdown('stdin'));
  process.stdin.once('error', () => shutdown('stdin'));
  process.stdin.resume();

  emit('listening', { port: server.address().port, queues: names, pid: process.pid });
}

main().catch(err => {
  emit('fatal', { message: err && err.message, stack: err && err.stack });
  process.exit(1);
});
