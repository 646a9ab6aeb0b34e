// bookwish-jobs delivery records, for the BookWish Node app's notification workers.
//
// When Node and Python workers share the `notifications` queue, an attempt that fails
// on one side may be retried on the other. bookwish_jobs records each push and email
// it delivered in its own table (`"bookwish_jobs"."notification_delivery"`: one row per
// notification, channel and target) and skips them on a retry. This module lets the
// Node processor read and write the same records, so a retry on either side resends
// only what no side delivered:
//
//   const { deliveryRecords } = require('bookwish-jobs-node-helper');
//   const records = deliveryRecords((sql, params) => prisma.$queryRawUnsafe(sql, ...params));
//   // or, with node-postgres: (sql, params) => pool.query(sql, params).then(r => r.rows)
//
//   for (const tokenRecord of pushTokens) {
//     await records.sendOnce(notificationId, 'push', tokenRecord.token,
//       async () => (await sendPush(tokenRecord.token, { title, body, data })).id);
//   }
//   if (user?.email) {
//     await records.sendOnce(notificationId, 'email', user.email, () => sendEmail({ ... }));
//   }
//
// sendOnce(notificationId, channel, target, send): when a record says `target` got this
// notification on `channel`, it returns false without calling `send`; otherwise it
// awaits `send()` and records the delivery (with what `send` returned, a push ticket
// id say, as the provider id), then returns true. If `send` throws, nothing is recorded
// and the error propagates, so the job's retry sends again. A notification whose id is
// empty has nothing to key on: it is sent without records, as bookwish_jobs does.
//
// What remains at least once: a process that dies after `send` and before the record is
// written (one statement later) sends that target again on the retry. Both sides share
// that window; see docs/bookwish/mixed-fleets.md.
'use strict';

const crypto = require('crypto');

const CHANNELS = new Set(['push', 'email']);

function quoteIdent(name) {
  if (typeof name !== 'string' || !name || name.includes('\0')) {
    throw new TypeError(`bookwish-jobs: not a schema name: ${JSON.stringify(name)}`);
  }
  return `"${name.replace(/"/g, '""')}"`;
}

// The UTC wall-clock time, as bookwish_jobs stores its TIMESTAMP columns.
function utcNow() {
  return new Date().toISOString().replace('T', ' ').replace('Z', '');
}

/**
 * Delivery records in bookwish_jobs' schema (BOOKWISH_JOBS_SCHEMA, default
 * "bookwish_jobs"), read and written with `query(sql, params)`, which must return
 * a promise of the result rows.
 */
function deliveryRecords(query, { schema = 'bookwish_jobs' } = {}) {
  if (typeof query !== 'function') {
    throw new TypeError('bookwish-jobs: deliveryRecords(query) needs a query(sql, params) function');
  }
  const table = `${quoteIdent(schema)}."notification_delivery"`;

  function checkChannel(channel) {
    if (!CHANNELS.has(channel)) {
      throw new TypeError(`bookwish-jobs: channel must be "push" or "email", got ${JSON.stringify(channel)}`);
    }
  }

  async function delivered(notificationId, channel) {
    checkChannel(channel);
    if (!notificationId) return new Set();
    const rows = await query(
      `SELECT "target" FROM ${table} WHERE "notification_id" = $1 AND "channel" = $2`,
      [notificationId, channel],
    );
    return new Set(rows.map(row => row.target));
  }

  // Returns false when another attempt recorded it first (the unique key decides).
  async function record(notificationId, channel, target, providerId = null) {
    checkChannel(channel);
    if (!notificationId) return false;
    const rows = await query(
      `INSERT INTO ${table} ("id", "notification_id", "channel", "target", "provider_id", "delivered_at") `
        + 'VALUES ($1, $2, $3, $4, $5, $6) '
        + 'ON CONFLICT ("notification_id", "channel", "target") DO NOTHING RETURNING "id"',
      [crypto.randomUUID().replace(/-/g, ''), notificationId, channel, target,
        providerId == null ? null : String(providerId), utcNow()],
    );
    return rows.length === 1;
  }

  async function sendOnce(notificationId, channel, target, send) {
    if ((await delivered(notificationId, channel)).has(target)) return false;
    const providerId = await send();
    await record(notificationId, channel, target,
      typeof providerId === 'string' || typeof providerId === 'number' ? providerId : null);
    return true;
  }

  return { delivered, record, sendOnce };
}

module.exports = { deliveryRecords };
