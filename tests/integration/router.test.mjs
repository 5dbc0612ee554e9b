// parley-router on its own, driven the way gateways drive it: envelopes
// PUBLISHed on parley:rt:N, sessions opened with session_open by hand, and
// what it publishes on parley:gw:ID watched with PSUBSCRIBE (no gateway
// runs). Routing and acks, retries, malformed envelopes, 300 messages in
// order, SCRIPT/FUNCTION FLUSH under it, the reaper, two routers splitting
// the slots, failover after SIGKILL, a Redis restart, SIGTERM.
//
// Every test makes its own users and gateway ids, and starts from one router
// holding all 64 slots (oneRouter), so any one runs alone.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { Cluster, LEASE_MS, SLOTS, waitFor } from './lib/cluster.mjs';
import { Conn, Subscriber, callScript, conversationKey, loadScripts, sessionOpen, slotOf, unpack, userKey } from './lib/resp.mjs';

// the per-user budgets lifted: one test pipelines 300 texts of one user
const cluster = new Cluster('router', { gateways: 0, routerArgs: ['--user-burst', '1000'] });
before(() => cluster.start());
after(() => cluster.stop());

const SLOT_KEYS = Array.from({ length: SLOTS }, (_, i) => `parley:slot:${i}`);
const SLOT_CHANNELS = Array.from({ length: SLOTS }, (_, i) => `parley:rt:${i}`);

// How many slots each router id holds ("null": free), e.g. {"router-1": 64}.
async function owners() {
    const out = {};
    // one GET per lease: on a cluster the 64 keys are in 64 hash slots (no MGET spans them)
    for (const o of await Promise.all(SLOT_KEYS.map((k) => cluster.redis('GET', k)))) out[o] = (out[o] || 0) + 1;
    return out;
}

async function waitOwners(want, what, timeout = 10000) {
    const same = (o) => JSON.stringify(Object.entries(o).sort()) === JSON.stringify(Object.entries(want).sort());
    let last;
    await waitFor(async () => same((last = await owners())), { timeout, what }).catch(() => {});
    assert.deepEqual(last, want, what);
}

// Exactly one router running, holding all 64 slots (stops the others, or
// starts one when none runs).
async function oneRouter() {
    const live = cluster.routers.filter((r) => r.proc.running);
    const keep = live.pop() || (await cluster.startRouter());
    for (const r of live) await r.proc.stop();
    await waitFor(async () => (await owners())[keep.id] === SLOTS, { what: `${keep.id} holding all ${SLOTS} slots` });
    await cluster.waitRouted(keep.proc);
    return keep;
}

// Fresh users and gateway ids for one test; a connection r (closed when the
// test ends). Users are registered with the register script, or with
// `parley useradd` as an operator does (cli: true; it hashes the password,
// ~0.1 s per user).
async function setup(t, bases = ['alice', 'bob'], { cli = false } = {}) {
    const n = cluster.name('t');
    const r = await Conn.open(cluster.redisPort);
    t.after(() => r.close());
    const sha = await loadScripts(cluster);
    const users = {};
    for (const b of bases) {
        const u = (users[b] = `${b}${n}`);
        if (cli) {
            const res = await cluster.cli(['useradd', u, '--password', 'password1']);
            assert.ok(res.ok, `useradd ${u}: ${res.stdout.trim() || res.stderr.trim()}`);
        } else {
            assert.equal(await callScript(r, sha, 'register', [userKey(u, 'account')], [u, 'H', Date.now(), 'parley:users', '']), 1, `register ${u}`);
        }
    }
    return { r, sha, users, gw: (base) => `${base}-${n}` };
}

// Watches the given gateways' channels (closed when the test ends).
async function watch(t, ...gws) {
    const sub = await Subscriber.open(cluster.redisPort, ...gws.map((g) => `parley:gw:${g}`));
    t.after(() => sub.close());
    return sub;
}

// A gateway's envelope for one text (docs/internals.md).
const envelope = (frm, to, data, cid, gw, conn) => Buffer.from(encode({ t: 'text', u: frm, g: gw, c: conn, to, data, cid }));

// PUBLISHes a text on its conversation's slot channel; resolves with the
// number of routers that received it.
const publishText = (r, frm, to, data, cid, gw, conn) =>
    r.call('PUBLISH', `parley:rt:${slotOf(conversationKey(frm, to))}`, envelope(frm, to, data, cid, gw, conn));

// alice on gateway gwA (connection 5) sends to bob, who has a session on gw1.
async function aliceAndBob(t, opts) {
    const s = await setup(t, ['alice', 'bob'], opts);
    const { alice, bob } = s.users;
    const gwA = s.gw('gwa');
    const gw1 = s.gw('gw1');
    await sessionOpen(s.r, s.sha, bob, gw1, 1);
    await sessionOpen(s.r, s.sha, alice, gwA, 5);
    const sub = await watch(t, gwA, gw1);
    const text = (data, cid, r = s.r) => publishText(r, alice, bob, data, cid, gwA, 5);
    return { ...s, alice, bob, gwA, gw1, sub, text };
}
const byChannel = (msgs) => Object.fromEntries(msgs.map(({ channel, env }) => [channel, env]));

cluster.test('a router started alone claims all 64 slots; parley routers lists them', async () => {
    for (const r of cluster.routers.filter((x) => x.proc.running)) await r.proc.stop();
    const r1 = await cluster.startRouter({ waitSlots: false });
    await waitOwners({ [r1.id]: SLOTS }, 'r1 claims all 64 slots');
    const out = (await cluster.cli(['routers'])).stdout;
    assert.ok(out.includes(r1.id) && out.includes('slots=64 [0-63]'), `parley routers: ${out.trim()}`);
});

cluster.test("a text reaches the recipient's gateway, the ack the sender's", async (t) => {
    await oneRouter();
    const { text, sub, gwA, gw1 } = await aliceAndBob(t, { cli: true });
    assert.equal(await text('hello', 'm1'), 1, 'PUBLISH reaches one router');
    const envs = byChannel(await sub.envelopes(2));
    assert.equal(envs[`parley:gw:${gw1}`]?.f?.data, 'hello', "bob's gateway gets the text");
    const ack = envs[`parley:gw:${gwA}`];
    assert.ok(ack?.t === 'c' && ack.c === 5 && ack.f.kind === 'ack' && ack.f.cid === 'm1', `alice's gateway gets the ack: ${JSON.stringify(ack)}`);
});

cluster.test('a retry with the same cid gets only the ack again, with the same id', async (t) => {
    await oneRouter();
    const { text, sub, gwA } = await aliceAndBob(t);
    await text('hello', 'm1');
    const ack = byChannel(await sub.envelopes(2))[`parley:gw:${gwA}`];
    await text('hello', 'm1');
    const msgs = await sub.envelopes(1);
    assert.ok(
        msgs.length === 1 && msgs[0].env.f.id === ack.f.id && msgs[0].env.f.kind === 'ack',
        `retry: only the ack again, same id: ${JSON.stringify(msgs)}`,
    );
});

cluster.test('a text to an unknown user: no_such_user to the sender', async (t) => {
    await oneRouter();
    const { r, sub, alice, gwA } = await aliceAndBob(t);
    await publishText(r, alice, `nobody${cluster.name('x')}`, 'x', 'm2', gwA, 5);
    const msgs = await sub.envelopes(1);
    assert.ok(msgs.length === 1 && msgs[0].env.f.code === 'no_such_user', `no_such_user error to the sender: ${JSON.stringify(msgs)}`);
});

cluster.test('malformed envelopes are dropped and the router keeps routing', async (t) => {
    const router = await oneRouter();
    const { r, alice, text, sub } = await aliceAndBob(t);
    await r.call('PUBLISH', 'parley:rt:0', Buffer.from('\xc1garbage', 'latin1'));
    await r.call('PUBLISH', 'parley:rt:0', Buffer.from(encode({ t: 'text', u: alice })));
    await r.call('PUBLISH', 'parley:rt:0', Buffer.from(encode([1, 2, 3])));
    await r.call('PUBLISH', 'parley:rt:0', '');
    await text('after garbage', 'm3');
    const msgs = await sub.envelopes(2);
    assert.ok(msgs.length === 2 && router.proc.running, `router survives malformed envelopes: ${JSON.stringify(msgs)}`);
});

cluster.test('a text without cid (dev mode) is delivered and acked without cid', async (t) => {
    await oneRouter();
    const { text, sub, gwA, gw1 } = await aliceAndBob(t);
    await text('no cid', '');
    const envs = byChannel(await sub.envelopes(2));
    const delivery = envs[`parley:gw:${gw1}`]?.f;
    const ack = envs[`parley:gw:${gwA}`]?.f;
    assert.ok(
        delivery?.data === 'no cid' && !('cid' in delivery) && ack?.kind === 'ack' && !('cid' in ack),
        `text without cid: delivered, acked without cid: ${JSON.stringify(envs)}`,
    );
});

cluster.test('300 pipelined texts of one conversation: delivered and acked in publish order', async (t) => {
    await oneRouter();
    const { r, text, sub, gwA, gw1 } = await aliceAndBob(t);
    await Promise.all(Array.from({ length: 300 }, (_, i) => text(`n${i}`, `o${i}`, r)));
    const msgs = await sub.envelopes(600, { timeout: 5000 });
    const toBob = msgs.filter((m) => m.channel === `parley:gw:${gw1}`).map((m) => m.env.f);
    const acks = msgs.filter((m) => m.channel === `parley:gw:${gwA}`).map((m) => m.env.f);
    const range = (n, f) => Array.from({ length: n }, (_, i) => f(i));
    assert.deepEqual(
        toBob.map((f) => f.data),
        range(300, (i) => `n${i}`),
        '300 deliveries in publish order',
    );
    const ids = toBob.map((f) => f.id);
    assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]) && new Set(ids).size === 300, 'ids increase');
    assert.deepEqual(
        acks.map((a) => a.cid),
        range(300, (i) => `o${i}`),
        '300 acks in order',
    );
    assert.deepEqual(
        toBob.map((f) => f.seq),
        range(300, (i) => toBob[0].seq + i),
        "bob's seqs are contiguous",
    );
});

cluster.test('SCRIPT FLUSH under a running router: it falls back to EVAL', async (t) => {
    await oneRouter();
    const { r, text, sub } = await aliceAndBob(t);
    await r.call('SCRIPT', 'FLUSH');
    await text('after flush', 'm4');
    const msgs = await sub.envelopes(2);
    assert.ok(msgs.length === 2 && msgs.some((m) => m.env.f.data === 'after flush'), `EVAL fallback after SCRIPT FLUSH: ${JSON.stringify(msgs)}`);
});

cluster.test('FUNCTION FLUSH under a running router: it loads the function again', async (t) => {
    await oneRouter();
    const { r, text, sub } = await aliceAndBob(t);
    await r.call('FUNCTION', 'FLUSH');
    await text('after function flush', 'm4f');
    const msgs = await sub.envelopes(2);
    assert.ok(
        msgs.length === 2 && msgs.some((m) => m.env.f.data === 'after function flush') && (await r.call('FUNCTION', 'LIST')).length === 1,
        `FUNCTION LOAD and FCALL again after FUNCTION FLUSH: ${JSON.stringify(msgs)}`,
    );
});

cluster.test('parley inbox lists what the router stored', async (t) => {
    await oneRouter();
    const { text, sub, alice, bob } = await aliceAndBob(t);
    await text('after flush', 'i1');
    await text('later', 'i2');
    assert.equal((await sub.envelopes(4)).length, 4, 'both texts delivered and acked');
    const out = (await cluster.cli(['inbox', bob, '--count', '2'])).stdout;
    assert.ok(
        out.includes('seq=') && out.includes('data="after flush"') && out.includes(`from=${alice} to=${bob}`),
        `parley inbox: ${out.trim().replace(/\n/g, ' | ')}`,
    );
});

cluster.test("the reaper closes a dead gateway's sessions, announces offline, forgets the gateway", async (t) => {
    await oneRouter();
    const { r, sha, users, gw } = await setup(t, ['carol'], { cli: true });
    const { carol } = users;
    const gwX = gw('gwx');
    const presence = await Subscriber.open(cluster.redisPort, `parley:presence:${carol}`);
    t.after(() => presence.close());
    await sessionOpen(r, sha, carol, gwX, 9);
    assert.equal((await presence.messages(1)).length, 1, 'her online');
    await r.call('SADD', 'parley:gateways', gwX);
    const gone = await waitFor(async () => (await r.call('SISMEMBER', 'parley:gateways', gwX)) === 0, { timeout: 5000 }).catch(() => false);
    assert.ok(gone, 'dead gateway removed from parley:gateways');
    assert.ok(
        (await r.call('SISMEMBER', 'parley:online', carol)) === 0 && (await r.call('SCARD', userKey(carol, 'sessions'))) === 0,
        'its sessions closed, carol offline',
    );
    const pm = await presence.messages(1);
    assert.ok(pm.length === 1, 'offline announced (once)');
    assert.deepEqual(unpack(pm[0].payload), { kind: 'offline', from: carol }, 'offline announced');
});

cluster.test('the reaper leaves a live gateway alone', async (t) => {
    await oneRouter();
    const { r, sha, users, gw } = await setup(t, ['carol']);
    const { carol } = users;
    const gwL = gw('gwl');
    await r.call('SET', `parley:gw:${gwL}:alive`, 1, 'PX', 5000);
    await r.call('SADD', 'parley:gateways', gwL);
    await sessionOpen(r, sha, carol, gwL, 1);
    // a dead gateway added after: once it is reaped, a reaper pass saw gwL too
    const gwD = gw('gwd');
    await r.call('SADD', 'parley:gateways', gwD);
    await waitFor(async () => (await r.call('SISMEMBER', 'parley:gateways', gwD)) === 0, { timeout: 5000, what: `a reaper pass (${gwD} reaped)` });
    const gws = await r.call('SMEMBERS', 'parley:gateways');
    const online = await r.call('SISMEMBER', 'parley:online', carol);
    assert.ok(gws.includes(gwL) && online === 1, `live gateway not reaped: ${gws} ${online}`);
});

cluster.test('two routers split the slots 32/32, one subscriber per slot channel, and route', async (t) => {
    const r1 = await oneRouter();
    const r2 = await cluster.startRouter({ waitSlots: false });
    await waitOwners({ [r1.id]: 32, [r2.id]: 32 }, 'two routers split 32/32');
    let subs;
    await waitFor(async () => (subs = (await cluster.redis('PUBSUB', 'NUMSUB', ...SLOT_CHANNELS)).filter((_, i) => i % 2)).every((n) => Number(n) === 1), {
        timeout: 3000,
    }).catch(() => {});
    assert.deepEqual(subs.map(Number), Array(SLOTS).fill(1), 'every slot channel has exactly one subscriber');
    const { text, sub } = await aliceAndBob(t);
    await text('two routers', 'm5');
    assert.equal((await sub.envelopes(2)).length, 2, 'routing works with two routers');
});

cluster.test('failover: after SIGKILL of one of two routers the other takes all 64 slots, routes, prunes the dead one', async (t) => {
    const r1 = await oneRouter();
    const r2 = await cluster.startRouter({ waitSlots: false });
    await waitOwners({ [r1.id]: 32, [r2.id]: 32 }, 'two routers split 32/32 before the kill');
    await r1.proc.signal('SIGKILL');
    const t0 = Date.now();
    await waitOwners({ [r2.id]: SLOTS }, 'r2 holds 64 after r1 is killed');
    t.diagnostic(`failover took ${Date.now() - t0} ms (lease ${LEASE_MS} ms)`);
    const { text, sub } = await aliceAndBob(t);
    await text('after failover', 'm6');
    assert.equal((await sub.envelopes(2)).length, 2, 'routing works after failover');
    const pruned = await waitFor(async () => (await cluster.redis('ZSCORE', 'parley:routers', r1.id)) === null, { timeout: 5000 }).catch(() => false);
    assert.ok(pruned, 'dead router pruned from parley:routers');
});

cluster.test('Redis restart with its data lost: the router claims the slots again and routes', async (t) => {
    const r1 = await oneRouter();
    await cluster.stopRedis('SIGKILL');
    // lost: the router must claim again and load the send function again
    for (const f of fs.readdirSync(cluster.redisDir)) fs.rmSync(path.join(cluster.redisDir, f), { recursive: true, force: true });
    await cluster.startRedis();
    await waitOwners({ [r1.id]: SLOTS }, 'r2 re-claims after a Redis restart', 10000);
    await cluster.waitRouted(r1.proc);
    const { r, users, gw } = await setup(t);
    const gwA = gw('gwa');
    const sub = await watch(t, gwA);
    await publishText(r, users.alice, users.bob, 'after restart', 'm7', gwA, 5);
    const msgs = await sub.envelopes(1);
    assert.ok(msgs.length === 1 && msgs[0].env.f.kind === 'ack', `routing works after the restart (ack): ${JSON.stringify(msgs)}`);
});

cluster.test('SIGTERM: exit 0, every slot released, out of parley:routers, no subscriber left', async () => {
    const r1 = await oneRouter();
    await waitFor(async () => JSON.stringify(await cluster.redis('ZRANGE', 'parley:routers', 0, -1)) === JSON.stringify([r1.id]), {
        what: `${r1.id} the only member of parley:routers`,
    });
    let exit;
    try {
        exit = await r1.proc.signal('SIGTERM', { timeout: 6000 });
    } catch (e) {
        exit = e.message;
    }
    assert.equal(exit?.code, 0, `SIGTERM: exit 0 (got ${JSON.stringify(exit)})`);
    assert.deepEqual(await owners(), { null: SLOTS }, 'SIGTERM: every slot released');
    assert.equal(await cluster.redis('ZCARD', 'parley:routers'), 0, 'SIGTERM: left parley:routers');
    assert.equal(await cluster.redis('PUBLISH', 'parley:rt:0', 'x'), 0, 'no subscriber left');
});
