// lifecycle.mjs - what the message lifecycle tests (lifecycle_*.test.mjs) share:
// the edit / delete / react / reply frames of protocol.md ("v1 additions:
// message lifecycle") sent and answered, history and sync read back, a user's
// inbox entries decoded from Redis (the reference format of the lifecycle
// decisions: {seq, id, w} texts, {seq, k: "e"|"d"|"r", ...} events), and a
// MONITOR tap that says how many inboxes each script call wrote.
import assert from 'node:assert/strict';
import net from 'node:net';
import { decode } from '@msgpack/msgpack';
import { brief } from './client.mjs';
import { waitFor } from './cluster.mjs';

// The kinds of the lifecycle events a session receives.
export const EVENT_KINDS = ['edit', 'delete', 'react'];
export const isEvent = (f) => EVENT_KINDS.includes(f.kind);

// Sends frame (which carries a cid) and resolves with its answer: the ack or
// the error carrying that cid (or an error without a cid, which the callers'
// assertions then report, rather than waiting for an answer that never comes).
export function answer(c, frame, timeoutMs) {
    c.send(frame);
    return c.next((x) => (x.kind === 'ack' && x.cid === frame.cid) || (x.kind === 'error' && (x.cid === frame.cid || x.cid === undefined)), timeoutMs);
}

// Sends frame and asserts the ack: {cid, id (the target's id for edit/delete/react), seq, sent}.
export async function acked(c, frame, timeoutMs) {
    const f = await answer(c, frame, timeoutMs);
    assert.equal(f.kind, 'ack', `${c.name}: ${brief(frame)} -> ${brief(f)}`);
    if (frame.kind !== 'text') assert.equal(f.id, frame.id, `the ack names the target message: ${brief(f)}`);
    assert.ok(Number.isInteger(f.seq) && f.seq > 0, `ack seq: ${brief(f)}`);
    assert.ok(Number.isInteger(f.sent) && f.sent > 0, `ack sent: ${brief(f)}`);
    return f;
}

// Sends frame and asserts `error {code, cid}` (the cid of the frame).
export async function refused(c, frame, code, what = '') {
    const f = await answer(c, frame);
    assert.deepEqual([f.kind, f.code, f.cid], ['error', code, frame.cid], `${what}${what ? ': ' : ''}${c.name}: ${brief(frame)} -> ${brief(f)}`);
    assert.equal(typeof f.message, 'string');
    return f;
}

// history {with, ...opts}; resolves with the history frame.
export async function history(c, withName, opts = {}) {
    c.send({ kind: 'history', with: withName, ...opts });
    const f = await c.next((x) => (x.kind === 'history' && x.with === withName) || x.kind === 'error');
    assert.equal(f.kind, 'history', brief(f));
    return f;
}

// The message with id in a history frame (asserted present).
export function inHistory(h, id) {
    const m = h.messages.find((x) => x.id === id);
    assert.ok(m, `message ${id} in history ${brief(h)}`);
    return m;
}

// hello.users[] entry of name
export const entry = (hello, name) => hello.users.find((u) => u.username === name);

// Sends sync {after, epoch}; resolves with {frames, end}: every frame the
// session got between the request and the end of the replay (the end frame
// `{kind: "sync"}` excluded), in arrival order, and the end frame. Only for a
// session that nothing else is sent to meanwhile.
export async function syncReplay(c, after, epoch) {
    const from = c.frames.length;
    c.send({ kind: 'sync', after, epoch });
    const end = await c.next({ kind: 'sync' });
    const at = c.frames.indexOf(end);
    const frames = c.frames.slice(from, at);
    for (let i = from; i < at; i++) c.taken.add(i);
    return { frames, end };
}

// Waits until the session c has n frames matching pred after index `from`
// (not taken or taken), and returns them in arrival order.
export async function framesAfter(c, from, pred, n, timeout = 5000) {
    await waitFor(() => c.frames.slice(from).filter(pred).length >= n, {
        timeout,
        interval: 10,
        what: `${c.name}: ${n} frame(s) after #${from}; frames: ${c.dump()}`,
    });
    return c.frames.slice(from).filter(pred);
}

// Asserts frames' seqs strictly increase (each entry once, in order).
export function assertSeqsIncrease(frames, what) {
    const seqs = frames.map((f) => f.seq);
    assert.ok(
        seqs.every((s, i) => Number.isInteger(s) && (i === 0 || s > seqs[i - 1])),
        `${what}: seqs increase: ${seqs.join(',')} (${frames.map(brief).join(', ')})`,
    );
}

// A short view of a frame for comparing sequences: kind and target id.
export const tag = (f) => `${f.kind}:${f.id}`;

// Every inbox entry of user, decoded (oldest first).
export async function inboxOf(cluster, user) {
    const raw = await cluster.redisBuffers('LRANGE', `parley:{u:${user}}:inbox`, '0', '-1');
    return raw.map((b) => decode(b));
}

// ------------------------------------------------------------------ MONITOR

// A MONITOR connection to the cluster's Redis: every command Redis runs (those
// run by scripts and functions too, as `[0 lua] "CMD" ...`) is kept as a line.
export class Monitor {
    static async open(port) {
        const m = new Monitor(port);
        await new Promise((resolve, reject) => {
            m.sock.once('connect', resolve);
            m.sock.once('error', reject);
        });
        m.sock.write('MONITOR\r\n');
        await waitFor(() => m.ok, { timeout: 3000, interval: 5, what: 'MONITOR +OK' });
        return m;
    }

    constructor(port) {
        this.lines = [];
        this.ok = false;
        this.buf = '';
        this.sock = net.createConnection({ host: '127.0.0.1', port });
        this.sock.setEncoding('latin1'); // binary values are escaped by Redis; keys stay ASCII
        this.sock.on('error', () => {});
        this.sock.on('data', (d) => {
            this.buf += d;
            let i;
            while ((i = this.buf.indexOf('\r\n')) >= 0) {
                const line = this.buf.slice(0, i);
                this.buf = this.buf.slice(i + 2);
                if (line === '+OK' && !this.ok) this.ok = true;
                else if (line.startsWith('+')) this.lines.push(line.slice(1));
            }
        });
    }

    // A marker line (an unknown-to-Parley key read), to cut the log at.
    async mark(cluster, name) {
        await cluster.redis('EXISTS', `parley-test:mark:${name}`);
        await waitFor(() => this.lines.some((l) => l.includes(`parley-test:mark:${name}`)), { timeout: 3000, interval: 5, what: `MONITOR mark ${name}` });
    }

    // The lines between the marks `from` and `to` (both seen).
    between(from, to) {
        const a = this.lines.findIndex((l) => l.includes(`parley-test:mark:${from}`));
        const b = this.lines.findIndex((l) => l.includes(`parley-test:mark:${to}`));
        assert.ok(a >= 0 && b > a, `marks ${from} and ${to} in the MONITOR log`);
        return this.lines.slice(a + 1, b);
    }

    close() {
        this.sock.destroy();
    }
}

const WRITES = new Set(['rpush', 'lpush', 'rpushx', 'lpushx', 'linsert', 'lset']);

// The script calls in MONITOR lines: each maximal run of `[N lua]` lines is the
// work of one script or function call (scripts are atomic: nothing runs in
// between), named by the client line next to it. Resolves with
// [{call, inboxes}]: `call` the client line, `inboxes` how many distinct
// user inboxes (parley:{u:NAME}:inbox) the call wrote.
export function scriptCalls(lines) {
    const out = [];
    let run = null;
    let lastClient = '';
    for (const l of lines) {
        const m = /^\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]*)"(?: "((?:[^"\\]|\\.)*)")?/.exec(l);
        if (!m) continue;
        if (m[1] === 'lua') {
            if (!run) {
                run = { call: lastClient, inboxes: new Set() };
                out.push(run);
            }
            if (WRITES.has(m[2].toLowerCase()) && /^parley:\{u:[^}]+\}:inbox$/.test(m[3] || '')) run.inboxes.add(m[3]);
        } else {
            run = null;
            lastClient = l.slice(0, 200);
        }
    }
    return out.map((r) => ({ call: r.call, inboxes: r.inboxes.size }));
}
