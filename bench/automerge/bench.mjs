// Automerge side of bench/crdt_bench.sh: plays the trace bench/crdt_bench writes (--trace) with
// the same rounds, and prints the same figures as one JSON line:
//   local   ops/s of Automerge.change for each field edit;
//   merge   ops/s of Automerge.loadIncremental of the other replica's round (bytes in, merged);
//   wire    bytes of Automerge.saveIncremental per field operation;
//   state   bytes of Automerge.save per field the objects hold at the end.
// Strings are ImmutableString: Kubernetes fields are replaced whole, like a register (Automerge's
// collaborative text would cost more). Usage: node bench.mjs TRACE
import * as A from '@automerge/automerge';
import { readFileSync } from 'node:fs';

const lines = readFileSync(process.argv[2], 'utf8').split('\n').filter((l) => l.length > 0);
const header = JSON.parse(lines[0]);
const objects = header.objects;
const round = header.round;

function immutable(v) {
  if (typeof v === 'string') return new A.ImmutableString(v);
  if (Array.isArray(v)) return v.map(immutable);
  if (v !== null && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = immutable(x);
    return out;
  }
  return v;
}

// Replica 0 creates every object, replica 1 loads it (not measured).
const docs = [[], []];
for (let i = 0; i < objects; ++i) {
  const created = A.from(immutable(JSON.parse(lines[1 + i])));
  docs[0].push(created);
  docs[1].push(A.load(A.save(created)));
  A.saveIncremental(docs[0][i]);
  A.saveIncremental(docs[1][i]);
}
const ops = lines.slice(1 + objects).map((l) => JSON.parse(l));

function edit(d, op) {
  let at = d;
  for (let i = 0; i + 1 < op.p.length; ++i) {
    const step = op.p[i];
    const listNext = typeof op.p[i + 1] === 'object';
    if (typeof step === 'string') {
      if (at[step] === undefined || at[step] === null) at[step] = listNext ? [] : {};
      at = at[step];
    } else {
      let found = -1;
      for (let j = 0; j < at.length; ++j) {
        if (String(at[j].name) === step.name) found = j;
      }
      if (found < 0) {
        at.push({ name: new A.ImmutableString(step.name) });
        found = at.length - 1;
      }
      at = at[found];
    }
  }
  const last = op.p[op.p.length - 1];
  if (op.erase) {
    delete at[last];
  } else {
    at[last] = immutable(op.v);
  }
}

let local = 0n;
let merge = 0n;
let wire = 0;
let messages = 0;
for (let done = 0; done < ops.length; ) {
  const end = Math.min(ops.length, done + round);
  const changed = [new Set(), new Set()];
  for (; done < end; ++done) {
    const op = ops[done];
    const t0 = process.hrtime.bigint();
    docs[op.r][op.o] = A.change(docs[op.r][op.o], (d) => edit(d, op));
    local += process.hrtime.bigint() - t0;
    changed[op.r].add(op.o);
  }
  for (const from of [0, 1]) {
    const to = 1 - from;
    for (const o of changed[from]) {
      const bytes = A.saveIncremental(docs[from][o]);
      const t0 = process.hrtime.bigint();
      docs[to][o] = A.loadIncremental(docs[to][o], bytes);
      merge += process.hrtime.bigint() - t0;
      wire += bytes.length;
      ++messages;
    }
  }
}

function leafFields(v) {
  if (Array.isArray(v)) return v.reduce((n, x) => n + leafFields(x), 0);
  if (v !== null && typeof v === 'object') {
    return Object.values(v).reduce((n, x) => n + leafFields(x), 0);
  }
  return 1;
}

let converged = true;
let stateBytes = 0;
let fields = 0;
for (let i = 0; i < objects; ++i) {
  const a = JSON.stringify(A.toJS(docs[0][i]));
  const b = JSON.stringify(A.toJS(docs[1][i]));
  converged = converged && a === b;
  stateBytes += A.save(docs[0][i]).length;
  fields += leafFields(JSON.parse(a));
}
const n = ops.length;
const perSecond = (ns) => Math.round(n / (Number(ns) / 1e9));
console.log(JSON.stringify({
  impl: 'automerge', ops: n, objects, round, converged,
  local_ops_per_s: perSecond(local), decode_merge_ops_per_s: perSecond(merge),
  wire_bytes_per_op: +(wire / n).toFixed(2), messages,
  state_bytes_per_field: +(stateBytes / fields).toFixed(2), fields,
}));
