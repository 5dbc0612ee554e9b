// Redis stalls (SIGSTOP, then SIGCONT) under steady 1:1 load: no acknowledged
// message is lost (issue 12, item 1; protocol.md, Delivery guarantees 2).
//
// A stopped Redis keeps its TCP connections open and answers nothing; its keys
// with a TTL (the gateways' alive keys) expire the moment it runs again. A
// stall longer than the heartbeat TTL therefore makes the router reap gateways
// that are alive, while the gateways' watchdogs drop and reopen their command
// connections and re-open their sessions. Whatever the interleaving, every
// session must end up with every acked entry, or be closed so that its client
// reconnects and syncs.
//
// Load: PAIRS pairs, senders on gw1, receivers on gw2. The clients behave as
// the protocol asks and no better: a sender retries an unanswered text with
// the same cid (and after `error unavailable`), and reconnects when closed; a
// receiver that is closed reconnects and sends `sync {after: the highest seq
// it has seen, epoch}`. Redis is stopped four times, for 1.4 to 2.3x the
// heartbeat TTL (PARLEY_STALLS=1.4,1.7,2,2.3 multiples; the watchdog, the
// reaper and the alive keys meet in another order each time), with steady
// traffic between (PARLEY_STALL_PAIRS, PARLEY_STALL_EVERY ms per sender, and
// PARLEY_STALL_TARGET=1 to stop gw2 instead, for experiments); then sending stops and the test
// waits (by condition) until every text is acked and then until every
// receiver has every acked id, de-duplicated by id.
import assert from 'node:assert/strict';
import { decode } from '@msgpack/msgpack';
import { after, before } from 'node:test';
import { Client, brief, healthz } from './lib/client.mjs';
import { Cluster, HEARTBEAT_TTL_MS, sleep, waitFor } from './lib/cluster.mjs';

const cluster = new Cluster('redis_stall', { gatewayArgs: ['--rate', '1000', '--burst', '1000'] });
before(() => cluster.start());
after(() => cluster.stop());

const PAIRS = Number(process.env.PARLEY_STALL_PAIRS || 20);
const SEND_EVERY_MS = Number(process.env.PARLEY_STALL_EVERY || 60); // per sender: ~16 texts/s, ~330/s in all
// stall lengths as multiples of the heartbeat TTL: the watchdog, the reaper
// and the alive keys' expiry meet in a different order for each
const STALLS = (process.env.PARLEY_STALLS || '1.4,1.7,2,2.3').split(',').map((x) => Math.round(Number(x) * HEARTBEAT_TTL_MS));
const BETWEEN_MS = 2500; // steady traffic after the gateways are healthy again
const RETRY_MS = 1000; // a text unanswered this long is sent again with its cid

// One user's connection to one gateway, reconnected whenever it closes, until
// stopped. onSession(client, fresh) runs for every new session after hello;
// onFrame(frame) for every frame after hello.
class Peer {
    constructor(user, port, label, { onSession = () => {}, onFrame = () => {} } = {}) {
        Object.assign(this, { user, port, label, onSession, onFrame });
        this.client = null;
        this.sessions = 0;
        this.closes = []; // close codes seen
        this.stopped = false;
        this.loop = this.run();
    }

    async run() {
        while (!this.stopped) {
            let c;
            try {
                c = await Client.connect(this.port, this.user.token, { name: `${this.label}#${this.sessions + 1}`, timeoutMs: 5000 });
            } catch {
                await sleep(100); // refused (503) or closed before hello: Redis not back yet
                continue;
            }
            this.sessions++;
            this.client = c;
            this.onSession(c, this.sessions === 1);
            let seen = 0;
            const pump = () => {
                for (; seen < c.frames.length; seen++) this.onFrame(c.frames[seen]);
            };
            const timer = setInterval(pump, 10);
            const info = await c.closed;
            clearInterval(timer);
            pump();
            this.client = null;
            if (!this.stopped) this.closes.push(info.code);
        }
    }

    async stop() {
        this.stopped = true;
        if (this.client) await this.client.close().catch(() => {});
        await this.loop;
    }
}

// Sends a text every SEND_EVERY_MS while `sending`, each with a fresh cid;
// retries unanswered ones with the same cid; records each cid's id.
class Sender {
    constructor(user, to, port) {
        this.to = to;
        this.msgs = new Map(); // cid -> {cid, data, id, at}
        this.problems = [];
        this.sending = true;
        this.n = 0;
        this.peer = new Peer(user, port, `${user.name}@gw1`, {
            onSession: () => this.resendAll(),
            onFrame: (f) => this.frame(f),
        });
        this.timer = setInterval(() => this.tick(), SEND_EVERY_MS);
    }

    transmit(m) {
        const c = this.peer.client;
        m.at = Date.now();
        if (c && c.isOpen) c.send({ kind: 'text', to: this.to, data: m.data, cid: m.cid });
    }

    resendAll() {
        for (const m of this.msgs.values()) if (m.id === null) this.transmit(m);
    }

    tick() {
        const now = Date.now();
        for (const m of this.msgs.values()) if (m.id === null && now - m.at > RETRY_MS) this.transmit(m);
        if (!this.sending || !this.peer.client) return;
        const cid = `${this.peer.user.name}-${++this.n}`;
        const m = { cid, data: `${cid} to ${this.to}`, id: null, at: 0 };
        this.msgs.set(cid, m);
        this.transmit(m);
    }

    frame(f) {
        const m = f.cid !== undefined && this.msgs.get(f.cid);
        if (!m) return;
        if (f.kind === 'ack') {
            if (m.id !== null && m.id !== f.id) this.problems.push(`cid ${m.cid} acked with ids ${m.id} and ${f.id}`);
            m.id = f.id;
        } else if (f.kind === 'error' && f.code === 'unavailable') {
            m.at = Date.now() - RETRY_MS + 100; // again in ~100 ms
        } else if (f.kind === 'error') {
            this.problems.push(`unexpected answer for ${m.cid}: ${brief(f)}`);
        }
    }

    get unacked() {
        return [...this.msgs.values()].filter((m) => m.id === null).length;
    }

    acked() {
        return [...this.msgs.values()].filter((m) => m.id !== null).map((m) => m.id);
    }

    async stop() {
        clearInterval(this.timer);
        await this.peer.stop();
    }
}

// Counts every text by id; on every new session but the first, sends
// sync {after: highest seq seen before this session, epoch}.
class Receiver {
    constructor(user, port) {
        this.user = user;
        this.got = new Map(); // id -> copies
        this.maxSeq = 0;
        this.epoch = null;
        this.syncs = [];
        this.problems = [];
        this.peer = new Peer(user, port, `${user.name}@gw2`, {
            onSession: (c, fresh) => this.session(c, fresh),
            onFrame: (f) => this.frame(f),
        });
    }

    session(c, fresh) {
        // frames after hello are counted only from now on: maxSeq is what the
        // client saw before this session, as the protocol's recovery says
        if (!fresh) {
            if (c.hello.epoch !== this.epoch) this.problems.push(`epoch changed: ${this.epoch} -> ${c.hello.epoch}`);
            c.send({ kind: 'sync', after: this.maxSeq, epoch: this.epoch });
        }
        this.epoch = c.hello.epoch;
        if (fresh) this.maxSeq = c.hello.seq;
    }

    frame(f) {
        if (f.kind === 'text') {
            this.got.set(f.id, (this.got.get(f.id) || 0) + 1);
            if (f.seq > this.maxSeq) this.maxSeq = f.seq;
        } else if (f.kind === 'sync') {
            this.syncs.push(f.recovered);
            if (!f.recovered) this.problems.push(`sync not recovered: ${brief(f)}`);
        }
    }

    async stop() {
        await this.peer.stop();
    }
}

async function allHealthy(timeout) {
    for (let i = 0; i < cluster.gateways.length; i++) {
        const g = cluster.gateways[i];
        await waitFor(async () => (await healthz(g.port)) === 200, { timeout, what: `${g.id} /healthz 200 after the stall` });
    }
}

cluster.test(
    `Redis stalled ${STALLS.length} times (${STALLS.join(', ')} ms; heartbeat TTL ${HEARTBEAT_TTL_MS} ms) under 1:1 load: every acked message reaches its receiver`,
    { timeout: 90000 },
    async () => {
        const bases = [];
        for (let i = 0; i < PAIRS; i++) bases.push('s', 'r');
        const us = await cluster.users(bases);
        const receivers = [];
        const senders = [];
        for (let i = 0; i < PAIRS; i++) receivers.push(new Receiver(us[2 * i + 1], cluster.gw(1)));
        await waitFor(() => receivers.every((r) => r.peer.sessions > 0), { timeout: 10000, what: 'every receiver connected' });
        for (let i = 0; i < PAIRS; i++) senders.push(new Sender(us[2 * i], us[2 * i + 1].name, cluster.gw(0)));
        const target = process.env.PARLEY_STALL_TARGET;
        const redisPid = target ? cluster.gateways[Number(target)].proc.pid : cluster.redisProc.pid;
        try {
            await sleep(1000); // steady traffic first
            for (const ms of STALLS) {
                process.kill(redisPid, 'SIGSTOP');
                try {
                    await sleep(ms); // the fault is a duration: nothing to wait for
                } finally {
                    process.kill(redisPid, 'SIGCONT');
                }
                await allHealthy(15000);
                await sleep(BETWEEN_MS);
            }
            for (const s of senders) s.sending = false;
            await waitFor(() => senders.every((s) => s.unacked === 0), {
                timeout: 20000,
                what: 'every text acked',
            }).catch((e) => {
                throw new Error(`${e.message}; unacked: ${senders.map((s) => s.unacked).join(',')}`);
            });
            const settled = () => receivers.every((r, i) => senders[i].acked().every((id) => r.got.has(id)));
            await waitFor(settled, { timeout: 10000, interval: 100, what: 'every receiver has every acked id' }).catch(() => {});
        } finally {
            for (const s of senders) await s.stop();
            for (const r of receivers) await r.stop();
        }

        let acked = 0;
        let lost = 0;
        let dups = 0;
        let extra = 0;
        const lines = [];
        const problems = [];
        for (let i = 0; i < PAIRS; i++) {
            const s = senders[i];
            const r = receivers[i];
            const ids = s.acked();
            const missing = ids.filter((id) => !r.got.has(id));
            const known = new Set(ids);
            acked += ids.length;
            lost += missing.length;
            extra += [...r.got.keys()].filter((id) => !known.has(id)).length;
            dups += [...r.got.values()].reduce((a, n) => a + n - 1, 0);
            problems.push(...s.problems, ...r.problems);
            if (missing.length) {
                // Redis kept its data: the inbox still holds what the receiver never got
                const inbox = (await cluster.redisBuffers('LRANGE', `parley:{u:${r.user.name}}:inbox`, '0', '-1')).map((x) => decode(x));
                const stored = new Set(inbox.map((e) => e.id));
                const seqs = inbox.filter((e) => missing.includes(e.id)).map((e) => e.seq);
                lines.push(
                    `${r.user.name}: ${missing.length} of ${ids.length} acked ids never received (${missing.filter((id) => stored.has(id)).length} in its inbox, seqs ${seqs.slice(0, 8).join(',')}${seqs.length > 8 ? ',...' : ''}); sessions ${r.peer.sessions}, closes [${r.peer.closes}], syncs [${r.syncs}]`,
                );
            }
        }
        const codes = (peers) => {
            const n = {};
            for (const p of peers) for (const c of p.closes) n[c] = (n[c] || 0) + 1;
            return JSON.stringify(n);
        };
        const closesR = codes(receivers.map((r) => r.peer));
        const closesS = codes(senders.map((s) => s.peer));
        console.error(
            `redis stall: ${acked} acked, ${lost} lost, ${dups} duplicate copies, ${extra} unacked ids received; ` +
                `receiver closes ${closesR}, sender closes ${closesS}` +
                (lines.length ? `\n  ${lines.join('\n  ')}` : ''),
        );
        assert.deepEqual(problems, [], 'protocol problems');
        assert.equal(lost, 0, `acked messages lost:\n  ${lines.join('\n  ')}`);
        assert.equal(extra, 0, 'ids received that were never acked');
    },
);
