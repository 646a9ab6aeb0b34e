// A stand-in for the BookWish Node app's Prisma Client: the calls the design's job code
// makes, sent as the SQL Prisma Client (5.x, PostgreSQL) sends for them, on node-postgres.
// (The real client needs Prisma's engines, which these machines cannot download.)
//
// It knows the models as `prisma generate` would, from the schema.prisma of the schema
// variant under test, and writes what Prisma's query engine writes:
// - every table schema-qualified and quoted: "bw_x1"."OrderDigestQueue";
// - create: the given fields plus every @default the client fills (cuid()/uuid() ids,
//   now(), literal defaults) and @updatedAt, in model order, with RETURNING of every
//   scalar field; enums bound as CAST($n::text AS "schema"."Enum") and read as ::text;
// - findMany/findUnique: SELECT of the scalar fields with OFFSET (and LIMIT for a
//   unique), conditions in one parenthesised AND; an include is a second query
//   (WHERE fk IN (...)), as the engine runs it without relationJoins;
// - update/updateMany: SET the given fields and @updatedAt; { decrement: n } is
//   "col" = ("schema"."Model"."col" - $n);
// - DateTime values in UTC, as Prisma stores them in TIMESTAMP(3).
'use strict';

const crypto = require('crypto');
const fs = require('fs');

const SCALARS = new Set(['String', 'Int', 'Boolean', 'DateTime', 'Float', 'BigInt', 'Decimal', 'Json']);

// The text of `@name(...)` in a field's attributes (nested parentheses allowed).
function attribute(attrs, name) {
  const start = attrs.indexOf(`@${name}(`);
  if (start < 0) return null;
  let depth = 0;
  for (let i = start + name.length + 1; i < attrs.length; i += 1) {
    if (attrs[i] === '(') depth += 1;
    if (attrs[i] === ')' && (depth -= 1) === 0) return attrs.slice(start + name.length + 2, i);
  }
  throw new Error(`unbalanced @${name}( in ${attrs}`);
}

function parseSchema(text) {
  const enums = new Set([...text.matchAll(/^enum\s+(\w+)\s*\{/gm)].map(m => m[1]));
  const models = {};
  for (const [, name, body] of text.matchAll(/^model\s+(\w+)\s*\{([\s\S]*?)^\}/gm)) {
    const fields = [];
    for (const raw of body.split('\n')) {
      const line = raw.replace(/\/\/.*$/, '').trim();
      if (!line || line.startsWith('@@')) continue;
      const [field, type, ...rest] = line.split(/\s+/);
      const base = type.replace(/[?[\]]/g, '');
      const attrs = rest.join(' ');
      if (type.endsWith('[]') || !(SCALARS.has(base) || enums.has(base))) continue; // a relation
      fields.push({
        name: field, type: base, optional: type.endsWith('?'), isEnum: enums.has(base),
        default: attribute(attrs, 'default'), updatedAt: attrs.includes('@updatedAt'),
      });
    }
    models[name] = { name, fields, byName: Object.fromEntries(fields.map(f => [f.name, f])) };
  }
  return models;
}

function cuidLike() {
  return `c${Date.now().toString(36)}${crypto.randomBytes(8).toString('hex')}`;
}

function utc(date) {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

class PrismaSql {
  constructor(client, schemaText, dbSchema) {
    this.client = client;
    this.models = parseSchema(schemaText);
    this.schema = dbSchema;
    this.log = [];
  }

  static open(client, schemaPath, dbSchema) {
    return new PrismaSql(client, fs.readFileSync(schemaPath, 'utf8'), dbSchema || 'public');
  }

  model(name) {
    const found = this.models[name];
    if (!found) throw new Error(`no model ${name} in schema.prisma`);
    return found;
  }

  table(model) { return `"${this.schema}"."${model.name}"`; }

  column(model, field) { return `${this.table(model)}."${field}"`; }

  selected(model, fields) {
    return fields.map(f => {
      const col = this.column(model, f.name);
      return f.isEnum ? `${col}::text` : col;
    }).join(', ');
  }

  // $n for a value of `field`, pushed onto params.
  bind(params, model, field, value) {
    params.push(value instanceof Date ? utc(value) : value);
    const n = `$${params.length}`;
    return field.isEnum ? `CAST(${n}::text AS "${this.schema}"."${field.type}")` : n;
  }

  where(params, model, where) {
    const parts = [];
    for (const [name, cond] of Object.entries(where || {})) {
      const field = model.byName[name];
      if (!field) throw new Error(`${model.name}.${name} is not a scalar field`);
      const col = this.column(model, name);
      if (cond !== null && typeof cond === 'object' && !(cond instanceof Date)) {
        if ('not' in cond && cond.not === null) parts.push(`${col} IS NOT NULL`);
        if ('lt' in cond) parts.push(`${col} < ${this.bind(params, model, field, cond.lt)}`);
        if ('in' in cond) {
          parts.push(`${col} IN (${cond.in.map(v => this.bind(params, model, field, v)).join(',')})`);
        }
      } else if (cond === null) {
        parts.push(`${col} IS NULL`);
      } else {
        parts.push(`${col} = ${this.bind(params, model, field, cond)}`);
      }
    }
    if (!parts.length) return '1=1';
    return parts.length === 1 ? parts[0] : `(${parts.join(' AND ')})`;
  }

  async run(sql, params) {
    this.log.push(sql);
    return (await this.client.query(sql, params)).rows;
  }

  defaultValue(field, now) {
    const text = field.default;
    if (text === 'cuid()') return cuidLike();
    if (text === 'uuid()') return crypto.randomUUID();
    if (text === 'now()') return now;
    if (text === 'true' || text === 'false') return text === 'true';
    if (/^-?\d+$/.test(text)) return Number(text);
    if (/^".*"$/.test(text)) return JSON.parse(text);
    if (/^\w+$/.test(text)) return text; // an enum value
    throw new Error(`unsupported @default(${text})`);
  }

  async create(modelName, data) {
    const model = this.model(modelName);
    const now = new Date();
    const params = [];
    const cols = [];
    const values = [];
    for (const field of model.fields) {
      let value;
      if (field.name in data) value = data[field.name];
      else if (field.updatedAt) value = now;
      else if (field.default !== null) value = this.defaultValue(field, now);
      else continue;
      cols.push(`"${field.name}"`);
      values.push(this.bind(params, model, field, value));
    }
    const sql = `INSERT INTO ${this.table(model)} (${cols.join(',')}) VALUES (${values.join(',')}) `
      + `RETURNING ${this.selected(model, model.fields)}`;
    return (await this.run(sql, params))[0];
  }

  async findMany(modelName, { where, select } = {}) {
    const model = this.model(modelName);
    const params = [];
    const fields = select ? model.fields.filter(f => select[f.name] || f.name === 'id') : model.fields;
    const cond = this.where(params, model, where);
    params.push(0);
    return this.run(`SELECT ${this.selected(model, fields)} FROM ${this.table(model)} `
      + `WHERE ${cond} OFFSET $${params.length}`, params);
  }

  async findUnique(modelName, { where, select } = {}) {
    const model = this.model(modelName);
    const params = [];
    const fields = select ? model.fields.filter(f => select[f.name] || f.name === 'id') : model.fields;
    const cond = this.where(params, model, where);
    params.push(1, 0);
    const rows = await this.run(`SELECT ${this.selected(model, fields)} FROM ${this.table(model)} `
      + `WHERE (${cond} AND 1=1) LIMIT $${params.length - 1} OFFSET $${params.length}`, params);
    return rows[0] || null;
  }

  setClause(params, model, data) {
    const now = new Date();
    const sets = [];
    for (const [name, value] of Object.entries(data)) {
      const field = model.byName[name];
      if (value !== null && typeof value === 'object' && 'decrement' in value) {
        sets.push(`"${name}" = (${this.column(model, name)} - ${this.bind(params, model, field, value.decrement)})`);
      } else {
        sets.push(`"${name}" = ${this.bind(params, model, field, value)}`);
      }
    }
    for (const field of model.fields.filter(f => f.updatedAt && !(f.name in data))) {
      sets.push(`"${field.name}" = ${this.bind(params, model, field, now)}`);
    }
    return sets.join(', ');
  }

  async update(modelName, { where, data }) {
    const model = this.model(modelName);
    const params = [];
    const sets = this.setClause(params, model, data);
    const cond = this.where(params, model, where);
    const rows = await this.run(`UPDATE ${this.table(model)} SET ${sets} WHERE (${cond} AND 1=1) `
      + `RETURNING ${this.selected(model, model.fields)}`, params);
    if (!rows.length) throw new Error(`P2025: ${model.name} to update not found`);
    return rows[0];
  }

  async updateMany(modelName, { where, data }) {
    const model = this.model(modelName);
    const params = [];
    const sets = this.setClause(params, model, data);
    const cond = this.where(params, model, where);
    const result = await this.client.query(`UPDATE ${this.table(model)} SET ${sets} WHERE ${cond}`, params);
    return { count: result.rowCount };
  }

  async groupBy(modelName, { by, where }) {
    const model = this.model(modelName);
    const params = [];
    const cols = by.map(name => this.column(model, name)).join(', ');
    const cond = this.where(params, model, where);
    params.push(0);
    return this.run(`SELECT ${cols} FROM ${this.table(model)} WHERE ${cond} GROUP BY ${cols} `
      + `OFFSET $${params.length}`, params);
  }
}

module.exports = { PrismaSql, parseSchema };
