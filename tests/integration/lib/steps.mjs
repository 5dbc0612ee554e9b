// steps.mjs - a script split into steps called by hand the way
// common/scripts_run.c runs it, hop by hop (docs/internals.md "Scripts in
// steps"), so a test sees each hop: its KEYS checked to share one slot, its
// name traced, the chain stopped before a given step (a crash between steps).
// resp.mjs's callScript follows a chain too, without these.
//
//   callSteps(conn, sha, name, keys, args, { buffers })
//
// A reply ["parley:next", NAME, NKEYS, key..., arg...] runs NAME with those
// KEYS/ARGV; ["parley:fork", [step], ..., [join]] runs the first entries at
// once (each may chain further), then the join with its ARGV extended by their
// final replies in order (a bulk string as it is, an integer in decimal, nil
// as ""). At most 64 hops in a chain (a fork's steps each continue its
// count); an error reply anywhere rejects the call.
// Every hop's KEYS are checked to share one Redis Cluster hash slot (the
// runner refuses a call that crosses slots).

export const MAX_HOPS = 64;
export const STOPPED = Symbol('stopped');

const str = (v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v);
const asStrings = (v) => (Buffer.isBuffer(v) ? v.toString('utf8') : Array.isArray(v) ? v.map(asStrings) : v);

// CRC16 (XMODEM) of the key's hash tag, as Redis Cluster computes slots.
function crc16(buf) {
    let crc = 0;
    for (const b of buf) {
        crc ^= b << 8;
        for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
}
export function keySlot(key) {
    const b = Buffer.from(key);
    const open = b.indexOf('{');
    if (open >= 0) {
        const close = b.indexOf('}', open + 1);
        if (close > open + 1) return crc16(b.subarray(open + 1, close)) % 16384;
    }
    return crc16(b) % 16384;
}

function entry(e) {
    const n = Number(e[1]);
    return { name: str(e[0]), keys: e.slice(2, 2 + n), args: e.slice(2 + n) };
}

function isTag(reply, tag) {
    return Array.isArray(reply) && reply.length > 0 && str(reply[0]) === tag;
}

async function run(conn, sha, name, keys, args, hops, trace, stopAt, onStep) {
    if (hops > 0 && name === stopAt) return STOPPED;
    if (onStep) await onStep(name);
    if (++hops > MAX_HOPS) throw new Error(`${name}: more than ${MAX_HOPS} hops`);
    const slots = new Set(keys.map((k) => keySlot(str(k))));
    if (slots.size > 1) throw new Error(`${name}: KEYS cross slots: ${keys.map(str).join(' ')}`);
    trace?.push(name);
    if (!sha[name]) throw new Error(`no script ${name}`);
    // one hop: the raw call (resp.mjs's callScript follows a whole chain itself)
    const reply = await conn.callBuffers(sha[name].startsWith('parley_') ? 'FCALL' : 'EVALSHA', sha[name], keys.length, ...keys, ...args);
    if (isTag(reply, 'parley:next')) {
        const e = entry(reply.slice(1));
        return run(conn, sha, e.name, e.keys, e.args, hops, trace, stopAt, onStep);
    }
    if (isTag(reply, 'parley:fork') || isTag(reply, 'parley:bulk')) {
        const es = reply.slice(1).map(entry);
        const join = es.pop();
        if (es.length > 1024) throw new Error(`${name}: a fork of ${es.length} steps`);
        const finals = await Promise.all(es.map((e) => run(conn, sha, e.name, e.keys, e.args, hops, trace, stopAt, onStep)));
        const more = finals.map((r) => {
            if (r === STOPPED) return '';
            if (r === null || r === undefined) return '';
            if (Buffer.isBuffer(r) || typeof r === 'number') return r;
            throw new Error(`${name}: a forked step answered ${JSON.stringify(asStrings(r))}`);
        });
        if (finals.includes(STOPPED)) return STOPPED;
        return run(conn, sha, join.name, join.keys, [...join.args, ...more], hops, trace, stopAt, onStep);
    }
    return reply;
}

// The final reply (strings, or Buffers with buffers); opts.trace: an array
// that gets the name of every step run; opts.stopAt: a step name where the
// chain stops before running it, as a crash or a lost connection would stop
// it (the reply is then STOPPED); opts.onStep: an async function called with
// each step's name before it runs (to change the data between two steps).
export async function callSteps(conn, sha, name, keys, args, { buffers = false, trace, stopAt, onStep } = {}) {
    const reply = await run(conn, sha, name, keys, args, 0, trace, stopAt, onStep);
    return buffers || reply === STOPPED ? reply : asStrings(reply);
}
