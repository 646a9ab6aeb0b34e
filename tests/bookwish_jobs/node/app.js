// The BookWish Node app's background jobs, as its design describes them: four Bull
// queues, the job data interfaces, the job options, the start-up schedules, the
// producers (digest rows through Prisma-shaped SQL, prisma.js) and the processors the
// design's code spells out. bookwish_jobs' tests drive this module (through cli.js)
// against the same Redis and PostgreSQL as the Python side.
//
//   interface NotificationJobData { notificationId; userId; type; title; body; orderId?; orderNumber? }
//   interface SquareSyncJobData { storeId }
//   interface ReservationCleanupJobData {}
//   interface OrderDigestJobData { type: 'daily' }
'use strict';

const Queue = require('bull');
const nodemailer = require('nodemailer');
const { Client } = require('pg');
const { PrismaSql } = require('./prisma');
const { deliveryRecords } = require('../../../src/bookwish_jobs/node-helper');

const QUEUE_NAMES = {
  notifications: 'notifications',
  squareSync: 'square-sync',
  reservationCleanup: 'reservation-cleanup',
  orderDigest: 'order-digest',
};

// The design's options, word for word (no timeouts; the digest's schedule sets no
// attempts, so Bull's default of 1 applies). Manual cleanup and digest runs are not in
// the design: they take their schedule's options.
const JOB_OPTIONS = {
  notifications: {
    attempts: 3, backoff: { type: 'exponential', delay: 2000 },
    removeOnComplete: true, removeOnFail: false,
  },
  squareSync: {
    removeOnComplete: true, removeOnFail: false,
    attempts: 3, backoff: { type: 'exponential', delay: 60000 },
  },
  squareSyncTrigger: { removeOnComplete: true, attempts: 1 },
  reservationCleanup: {
    removeOnComplete: true, removeOnFail: false,
    attempts: 3, backoff: { type: 'exponential', delay: 30000 },
  },
  orderDigest: { removeOnComplete: true, removeOnFail: false },
};

const EMAIL_TYPES = ['order_update', 'payment_issue', 'premium_subscription_expiring'];

function openQueues(redisUrl) {
  const queues = {};
  for (const [key, name] of Object.entries(QUEUE_NAMES)) queues[key] = new Queue(name, redisUrl);
  return queues;
}

// The Prisma datasource: DATABASE_URL with ?schema=..., as Prisma reads it, and the
// client generated from the variant's schema.prisma.
function openDatabase(databaseUrl, prismaSchema) {
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema') || 'public';
  url.searchParams.delete('schema');
  const client = new Client({ connectionString: url.toString(), options: `-c search_path="${schema}"` });
  return { client, prisma: PrismaSql.open(client, prismaSchema, schema) };
}

// --- producers ------------------------------------------------------------------

function queueNotification(queues, data) {
  return queues.notifications.add(data, JOB_OPTIONS.notifications);
}

function triggerStoreSync(queues, storeId) {
  return queues.squareSync.add({ storeId }, JOB_OPTIONS.squareSyncTrigger);
}

function runReservationCleanup(queues) {
  return queues.reservationCleanup.add({}, JOB_OPTIONS.reservationCleanup);
}

function runOrderDigest(queues) {
  return queues.orderDigest.add({ type: 'daily' }, JOB_OPTIONS.orderDigest);
}

// prisma.orderDigestQueue.create({ data: { storeId, orderId, isSpecialOrder } })
async function queueStoreOrderForDigest(prisma, storeId, orderId, isSpecialOrder) {
  return (await prisma.create('OrderDigestQueue', { storeId, orderId, isSpecialOrder })).id;
}

// prisma.bookwishOpsDigestQueue.create({ data: { orderId } })
async function queueOrderForOpsDigest(prisma, orderId) {
  return (await prisma.create('BookwishOpsDigestQueue', { orderId })).id;
}

// --- scheduling at start-up -------------------------------------------------------

async function scheduleSquareSyncs(queues, prisma) {
  const stores = await prisma.findMany('Store', {
    where: { inventorySource: 'square', squareAccessToken: { not: null } },
  });
  const ids = stores.map(s => s.id).sort();
  for (const storeId of ids) {
    await queues.squareSync.add({ storeId }, {
      ...JOB_OPTIONS.squareSync, jobId: `square-sync-${storeId}`, repeat: { cron: '0 * * * *' },
    });
  }
  return ids;
}

function scheduleReservationCleanup(queues) {
  return queues.reservationCleanup.add({}, {
    ...JOB_OPTIONS.reservationCleanup, jobId: 'reservation-cleanup-recurring',
    repeat: { cron: '*/15 * * * *' },
  });
}

function scheduleOrderDigest(queues) {
  return queues.orderDigest.add({ type: 'daily' }, {
    ...JOB_OPTIONS.orderDigest, repeat: { cron: '0 6 * * *' },
  });
}

// --- the services the design's code calls ----------------------------------------

// sendPush(token, { title, body, data }): one message to Expo; a ticket error throws.
function pushSender(expoUrl) {
  return async (to, { title, body, data }) => {
    const reply = await fetch(`${expoUrl}/--/api/v2/push/send`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify([{ to, title, body, data, sound: 'default' }]),
    });
    const answer = await reply.json();
    if (reply.status !== 200) throw new Error(`Expo answered ${reply.status}`);
    const [ticket] = answer.data;
    if (ticket.status !== 'ok') throw new Error(`push ticket error: ${ticket.details.error}`);
    return ticket.id;
  };
}

// sendEmail({ to, subject, htmlBody, textBody }) through SMTP.
function emailSender(smtpUrl, from = 'BookWish <no-reply@bookwish.local>') {
  const transport = nodemailer.createTransport(smtpUrl);
  return async ({ to, subject, htmlBody, textBody }) => {
    const info = await transport.sendMail({ from, to, subject, html: htmlBody, text: textBody });
    return info.messageId;
  };
}

// --- processors: the design's code ------------------------------------------------

async function processNotification(ctx, job) {
  const { notificationId, userId, type, title, body } = job.data;
  const pushTokens = await ctx.prisma.findMany('PushToken', { where: { userId } });
  for (const tokenRecord of pushTokens) {
    await ctx.sendOnce(notificationId, 'push', tokenRecord.token,
      () => ctx.sendPush(tokenRecord.token, { title, body, data: { notificationId, type } }));
  }
  if (EMAIL_TYPES.includes(type)) {
    const user = await ctx.prisma.findUnique('User', { where: { id: userId }, select: { email: true } });
    if (user?.email) {
      await ctx.sendOnce(notificationId, 'email', user.email, () => ctx.sendEmail({
        to: user.email, subject: title, htmlBody: `<p>${body}</p>`, textBody: body,
      }));
    }
  }
}

async function processReservationCleanup(ctx) {
  const cutoffTime = new Date();
  cutoffTime.setMinutes(cutoffTime.getMinutes() - 30);
  const stuckOrders = await ctx.prisma.findMany('Order', {
    where: { status: 'pending', createdAt: { lt: cutoffTime } },
  });
  // include: { items: { where: { inventoryId: { not: null } } } }
  const items = stuckOrders.length ? await ctx.prisma.findMany('OrderItem', {
    where: { orderId: { in: stuckOrders.map(o => o.id) }, inventoryId: { not: null } },
  }) : [];
  for (const order of stuckOrders) order.items = items.filter(i => i.orderId === order.id);
  for (const order of stuckOrders) {
    for (const item of order.items) {
      if (item.inventoryId) {
        await ctx.prisma.update('Inventory', {
          where: { id: item.inventoryId },
          data: { reservedQuantity: { decrement: item.quantity } },
        });
      }
    }
    await ctx.prisma.update('Order', {
      where: { id: order.id }, data: { status: 'cancelled', paymentStatus: 'failed' },
    });
  }
  return {
    releasedOrders: stuckOrders.length,
    releasedItems: stuckOrders.reduce((sum, o) => sum + o.items.length, 0),
  };
}

// The design names emailService.sendStoreOrderDigest(store, ownerEmail, items) only: a
// plain list of the orders stands in for its template.
function digestEmail(subject, items) {
  const lines = items.map(({ order, isSpecialOrder }) => `- ${order.orderNumber}`
    + `${isSpecialOrder ? ' [SPECIAL ORDER]' : ''}`);
  return { subject, textBody: `${subject}\n\n${lines.join('\n')}\n`, htmlBody: `<pre>${lines.join('\n')}</pre>` };
}

async function digestItems(ctx, model, where) {
  const entries = await ctx.prisma.findMany(model, { where });
  const ids = [...new Set(entries.map(e => e.orderId))];
  const orders = ids.length ? await ctx.prisma.findMany('Order', { where: { id: { in: ids } } }) : [];
  return entries.map(e => ({ ...e, order: orders.find(o => o.id === e.orderId) }));
}

async function processStoreDigests(ctx) {
  const storesWithPendingItems = await ctx.prisma.groupBy('OrderDigestQueue', {
    by: ['storeId'], where: { processed: false },
  });
  for (const storeGroup of storesWithPendingItems) {
    const digestItems_ = await digestItems(ctx, 'OrderDigestQueue',
      { storeId: storeGroup.storeId, processed: false });
    const store = await ctx.prisma.findUnique('Store', { where: { id: storeGroup.storeId } });
    const owner = store.ownerId
      ? await ctx.prisma.findUnique('User', { where: { id: store.ownerId } }) : null;
    const ownerEmail = owner?.email || store.email;
    if (ownerEmail) {
      await ctx.sendEmail({ to: ownerEmail, ...digestEmail('BookWish daily orders',
        digestItems_.map(item => ({ order: item.order, isSpecialOrder: item.isSpecialOrder }))) });
    }
    await ctx.prisma.updateMany('OrderDigestQueue', {
      where: { id: { in: digestItems_.map(i => i.id) } }, data: { processed: true },
    });
  }
}

// The design calls processBookwishOpsDigest() without showing it: the same steps, one
// email to operations.
async function processBookwishOpsDigest(ctx) {
  const items = await digestItems(ctx, 'BookwishOpsDigestQueue', { processed: false });
  if (!items.length || !ctx.opsEmail) return;
  await ctx.sendEmail({ to: ctx.opsEmail, ...digestEmail('BookWish operations digest', items) });
  await ctx.prisma.updateMany('BookwishOpsDigestQueue', {
    where: { id: { in: items.map(i => i.id) } }, data: { processed: true },
  });
}

async function processOrderDigest(ctx) {
  await processStoreDigests(ctx);
  await processBookwishOpsDigest(ctx);
}

const PROCESSORS = {
  notifications: processNotification,
  reservationCleanup: processReservationCleanup,
  orderDigest: processOrderDigest,
};

// What the processors need. `deliveryHelper`: the notification processor consults and
// writes bookwish_jobs' delivery records (src/bookwish_jobs/node-helper).
function designContext({ client, prisma }, { expoUrl, smtpUrl, opsEmail, deliveryHelper, ownSchema }) {
  const records = deliveryRecords((sql, params) => client.query(sql, params).then(r => r.rows),
    { schema: ownSchema || 'bookwish_jobs' });
  return {
    prisma, opsEmail,
    sendPush: expoUrl ? pushSender(expoUrl) : null,
    sendEmail: smtpUrl ? emailSender(smtpUrl) : null,
    sendOnce: deliveryHelper ? records.sendOnce : (id, channel, target, send) => send(),
  };
}

// --- workers (queue.process(fn): Bull's default job name only) --------------------

function requireFields(data, fields) {
  for (const [field, type] of Object.entries(fields)) {
    const optional = type.endsWith('?');
    const value = data[field];
    if (value === undefined && optional) continue;
    if (typeof value !== type.replace('?', '')) {
      throw new Error(`job data: ${field} must be a ${type}, got ${JSON.stringify(value)}`);
    }
  }
}

const VALIDATORS = {
  notifications: data => requireFields(data, {
    notificationId: 'string', userId: 'string', type: 'string', title: 'string',
    body: 'string', orderId: 'string?', orderNumber: 'string?',
  }),
  squareSync: data => requireFields(data, { storeId: 'string' }),
  reservationCleanup: () => {},
  orderDigest: data => requireFields(data, { type: 'string' }),
};

// onJob(key, job) runs before the processor; with `ctx` the design's processors run
// (square-sync's inventoryService is not in the design: it only records the job).
function startWorkers(queues, onJob, ctx = null) {
  for (const [key, queue] of Object.entries(queues)) {
    queue.process(async job => {
      VALIDATORS[key](job.data);
      const recorded = await onJob(key, job);
      return ctx && PROCESSORS[key] ? PROCESSORS[key](ctx, job) : recorded;
    });
  }
}

module.exports = {
  JOB_OPTIONS, QUEUE_NAMES, openQueues, openDatabase, queueNotification, triggerStoreSync,
  runReservationCleanup, runOrderDigest, queueStoreOrderForDigest, queueOrderForOpsDigest,
  scheduleSquareSyncs, scheduleReservationCleanup, scheduleOrderDigest, startWorkers,
  designContext,
};
