// The Lua scripts (docs/internals.md: register, session_open/close, send, login_create/revoke/list/touch,
// sync, typing, contacts, group, read, renew/release_slot, forget_gateway, throttle), called by hand
// (FCALL / EVALSHA with the names and SHA1s `parley scripts --load` prints)
// against a real redis-server with no router: each test checks one script's
// KEYS/ARGV contract through its reply, the state it stores and everything it
// publishes. Each test starts from FLUSHALL and builds the state it needs,
// so any one runs alone.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { Cluster, SEND_STEPS, waitFor } from './lib/cluster.mjs';
import {
    Conn,
    Subscriber,
    callScript,
    envelopes,
    followSteps,
    loadScripts,
    sessionClose,
    sessionOpen,
    sessionOpenTail,
    unpack,
    userKey as U,
} from './lib/resp.mjs';
import { callSteps } from './lib/steps.mjs';

// Redis only: a router would claim slots and reap the test's made-up gateways.
const cluster = new Cluster('scripts', { gateways: 0 });
// On a cluster (PARLEY_TEST_REDIS=cluster: one node holding every slot) Redis refuses a script
// whose keys are in two slots: the tests that call send.lua, fanout.lua (one-Redis scripts) or
// build their state with such calls do not apply there; the steps' own tests run either way.
const ONE_REDIS_ONLY = SEND_STEPS && 'one-Redis scripts (send.lua, fanout.lua) or a cross-slot set-up';
before(async () => {
    await cluster.start();
    await cluster.router.proc.stop();
});
after(() => cluster.stop());

// the send function's ARGV 1..21 (gateway prefix, inbox cap, history cap,
// dedupe ttl, key formats, gateway set, fan-out chunk, inbox and history
// bytes, job key formats, parley:fanouts, the per-user budgets); LIMITS are
// the router's defaults but no budgets (0: off) and a chunk of 500
const LIMITS = {
    inboxCap: 1000,
    historyCap: 10000,
    ttl: 86400,
    chunk: 500,
    inboxBytes: 8 << 20,
    historyBytes: 32 << 20,
    rates: [0, 1, 0, 1, 0, 1],
};
const JOB_FMT = 'parley:{g:%s}:job:%s';
const TODO_FMT = 'parley:{g:%s}:todo:%s';
const sendArgs = (l = LIMITS) => [
    'parley:gw:',
    l.inboxCap,
    l.historyCap,
    l.ttl,
    U('%s', 'meta'),
    U('%s', 'inbox'),
    U('%s', 'sessions'),
    U('%s', 'unread'),
    'parley:gateways',
    l.chunk,
    l.inboxBytes,
    l.historyBytes,
    JOB_FMT,
    TODO_FMT,
    'parley:fanouts',
    ...l.rates,
    U('%s', 'mentions'),
    U('%s', 'read'),
];
const str = (v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v);

function sendKeys(frm, to) {
    if (to.startsWith('#'))
        return [
            U(frm, 'cids'),
            `parley:{g:${to}}:meta`,
            `parley:{g:${to}}:members`,
            'parley:ids',
            `parley:{c:${to}}:history`,
            `parley:{g:${to}}:fanout`,
            `parley:{c:${to}}:bytes`,
            U(frm, 'budget'),
            `parley:{g:${to}}:admins`,
        ];
    const conv = [frm, to].sort().join('|');
    return [
        U(frm, 'cids'),
        U(to, 'account'),
        'parley:ids',
        `parley:{c:${conv}}:history`,
        U(to, 'meta'),
        U(to, 'inbox'),
        U(to, 'sessions'),
        U(frm, 'meta'),
        U(frm, 'inbox'),
        U(frm, 'sessions'),
        U(frm, 'contacts'),
        U(to, 'contacts'),
        U(to, 'unread'),
        `parley:{c:${conv}}:bytes`,
        U(frm, 'budget'),
        U(to, 'hidden'),
        U(to, 'mentions'),
        U(to, 'read'),
    ];
}

// A fresh Redis for one test: FLUSHALL, the scripts loaded, a connection r and
// a subscriber to every gateway, presence and new-user channel (both closed
// when the test ends), and the script calls bound to them.
async function fresh(t) {
    const r = await Conn.open(cluster.redisPort);
    await r.call('FLUSHALL');
    const sha = await loadScripts(cluster);
    const sub = await Subscriber.open(cluster.redisPort, 'parley:gw:*', 'parley:presence:*', 'parley:users:*');
    t.after(() => {
        r.close();
        sub.close();
    });
    const ev = (name, keys, args, opts) => callScript(r, sha, name, keys, args, opts);
    // a script split into steps (group, read, typing, block): the chain's final reply
    const steps = (name, keys, args, opts) => callSteps(r, sha, name, keys, args, opts);
    const s = {
        r,
        sha,
        ev,
        steps,
        // Everything published since the last call: [{channel, env}] for each
        // envelope on a gateway channel (a payload may hold several),
        // [{channel, payload}] for the others; raw: the messages as published.
        async published({ raw = false } = {}) {
            const ms = await sub.drain(r);
            if (raw) return ms;
            return ms.flatMap((m) => (m.channel.startsWith('parley:gw:') ? envelopes(m.payload).map((env) => ({ channel: m.channel, env })) : [m]));
        },
        register: (user, hash = 'H', created = 1000, chan) => ev('register', [U(user, 'account')], [user, hash, created, 'parley:users', chan ?? '']),
        sopen: (user, gw, conn, opts) => sessionOpen(r, sha, user, gw, conn, opts),
        sclose: (user, gw, conn, reaping = false) => sessionClose(r, sha, user, gw, conn, reaping),
        // One send call for several messages [frm, to, data, cid, sess, conn]:
        // the router's batch. Resolves with the per-message results.
        sendBatch(msgs, limits = LIMITS) {
            const keys = [];
            const args = sendArgs(limits);
            for (const [frm, to, data, cid, sess, conn, op = 'text', ref = ''] of msgs) {
                keys.push(...sendKeys(frm, to));
                args.push(frm, to, data, cid, sess, conn, op, ref);
            }
            return ev('send', keys, args);
        },
        async send(frm, to, data, cid, sess, conn) {
            const res = await s.sendBatch([[frm, to, data, cid, sess, conn]]);
            assert.ok(Array.isArray(res) && res.length === 1, `send ${frm} -> ${to}: ${JSON.stringify(res)}`);
            return res[0];
        },
        sync: (user, after, epoch, n = 100, bytes = 262144) =>
            ev('sync', [U(user, 'meta'), U(user, 'inbox')], [after, epoch, n, bytes, user, 'parley:{c:%s}:history', '0', 'parley:{g:%s}:members'], {
                buffers: true,
            }),
        // {mode, cursor, then 7 fields per entry (name, online, unread, read, peer_read, last, roles)}: the reply without its `blocked` (contactsFull)
        contacts: async (user, limit, cursor = '', n = 100, preview = 256) => {
            const res = await s.contactsFull(user, limit, cursor, n, preview);
            return [res[0], res[1], ...res.slice(3)];
        },
        // the reply as the script gives it, less each entry's 8th field (its unread mentions: contactsMentions)
        contactsFull: async (user, limit, cursor = '', n = 100, preview = 256) => {
            const res = await s.contactsRaw(user, limit, cursor, n, preview);
            return [...res.slice(0, 3), ...res.slice(3).filter((_, i) => i % 8 !== 7)];
        },
        // name -> unread mentions, from one page
        contactsMentions: async (user, limit) => {
            const res = await s.contactsRaw(user, limit);
            const out = {};
            for (let i = 3; i < res.length; i += 8) out[str(res[i])] = res[i + 7];
            return out;
        },
        // contacts.lua, the first of its steps (on parley:users), followed to the last
        contactsRaw: (user, limit, cursor = '', n = 100, preview = 256) =>
            ev(
                'contacts',
                ['parley:users'],
                [
                    user,
                    limit,
                    'parley:{g:%s}:members',
                    'parley:{u:%s}:read',
                    'parley:{c:%s}:history',
                    cursor,
                    n,
                    preview,
                    'parley:{g:%s}:meta',
                    'parley:{g:%s}:admins',
                    'parley:online',
                    U(user, 'contacts'),
                    U(user, 'groups'),
                    U(user, 'unread'),
                    U(user, 'read'),
                    U(user, 'hidden'),
                    U(user, 'blocks'),
                    U(user, 'mentions'),
                ],
                { buffers: true },
            ),
        lastEntry: async (user) => unpack(await r.callBuffers('LINDEX', U(user, 'inbox'), -1)),
        // group.lua (and its steps): `by` runs op on #name (members for create and add)
        group: (op, name, by, members = [], open = '0', createdMax = 100, groupOpMs = 1000, opts) =>
            steps(
                'group',
                [`parley:{g:${name}}:meta`, `parley:{g:${name}}:members`, `parley:{g:${name}}:joined`, `parley:{g:${name}}:admins`],
                [
                    op,
                    name,
                    by,
                    open,
                    1000,
                    'parley:gw:',
                    U('%s', 'sessions'),
                    U('%s', 'groups'),
                    5000,
                    U('%s', 'unread'),
                    U('%s', 'read'),
                    createdMax,
                    U('%s', 'meta'),
                    groupOpMs,
                    U('%s', 'blocks'),
                    U('%s', 'mentions'),
                    U('%s', 'recount'),
                    U('%s', 'groupop'),
                    'parley:users',
                    `parley:{c:${name}}:history`,
                    `parley:{c:${name}}:bytes`,
                    'parley:groups',
                    'parley:gateways',
                    U('%s', 'inbox'),
                    ...members,
                ],
                opts,
            ),
        // block.lua (and its steps): `by` blocks (on) or unblocks `user`; cap: --max-blocks
        block: (by, user, on, cap = 1000) =>
            steps(
                'block',
                [U(user, 'account')],
                [
                    by,
                    user,
                    on ? '1' : '0',
                    cap,
                    'parley:gw:',
                    U(by, 'blocks'),
                    U(by, 'hidden'),
                    U(by, 'sessions'),
                    U(user, 'hidden'),
                    U(user, 'blocks'),
                    U(user, 'sessions'),
                ],
            ),
        typing: (from, to) =>
            steps(
                'typing',
                [U(to, 'account'), U(to, 'sessions'), U(to, 'hidden')],
                [
                    'parley:gw:',
                    to,
                    Buffer.from(encode({ kind: 'typing', from, to })),
                    '0',
                    from,
                    U('%s', 'sessions'),
                    0,
                    0,
                    U(from, `typing:${to}`),
                    'parley:gateways',
                ],
            ),
        // read.lua (and its steps): reader (session sess) has read its conversation with `with` up to upto
        read(reader, withName, upto, sess = `gwR#${reader}`) {
            const group = withName.startsWith('#');
            const conv = group ? withName : [reader, withName].sort().join('|');
            const who = group ? [`parley:{g:${withName}}:members`, `parley:{g:${withName}}:meta`] : [U(withName, 'account'), U(withName, 'account')];
            return steps('read', who, [
                reader,
                withName,
                group ? '1' : '0',
                upto,
                'parley:gw:',
                U('%s', 'sessions'),
                sess,
                `parley:{c:${conv}}:history`,
                U(reader, 'read'),
                U(reader, 'unread'),
                U(reader, 'mentions'),
                U(reader, 'recount'),
                'parley:gateways',
                U(reader, 'meta'),
                U(reader, 'inbox'),
            ]);
        },
        // reader's [unread, read] for a conversation, as stored (null: no field)
        counters: async (user, conv) => [await r.call('HGET', U(user, 'unread'), conv), await r.call('HGET', U(user, 'read'), conv)],
    };
    return s;
}

// alice, bob and carol registered; bob on gw1 (conn 7) and gw2 (conn 3), alice
// on gwA (conn 5); nothing published left over.
async function aliceAndBob(t) {
    const s = await fresh(t);
    for (const u of ['alice', 'bob', 'carol']) await s.register(u);
    await s.sopen('bob', 'gw1', 7);
    await s.sopen('bob', 'gw2', 3);
    await s.sopen('alice', 'gwA', 5);
    await s.published();
    return s;
}

cluster.test('register: creates once, keeps the first hash, announces the newcomer', async (t) => {
    const { r, register, published } = await fresh(t);
    assert.equal(await register('alice', 'H1', 1000, 'parley:users:new'), 1, 'register creates alice');
    assert.equal(await register('alice', 'H2', 1000), 0, 'register refuses a taken name');
    assert.equal(await r.call('HGET', U('alice', 'account'), 'pw'), 'H1', 'register keeps the first hash');
    assert.deepEqual(
        (await published()).map((m) => [m.channel, str(m.payload)]),
        [['parley:users:new', 'alice 1']],
        "register announces 'alice 1' once",
    );
    for (const u of ['bob', 'carol']) await register(u);
    assert.deepEqual(await r.call('ZRANGE', 'parley:users', 0, -1), ['alice', 'bob', 'carol'], 'users zset');
});

cluster.test('session_open: the first session goes online and is announced, a second one keeps the epoch quietly', async (t) => {
    const { r, register, sopen, published } = await fresh(t);
    await register('bob');
    let res = await sopen('bob', 'gw1', 7);
    assert.ok(res[0] === 0 && Buffer.isBuffer(res[1]) && res.length === 3 && res[2] === 0, `session_open bob: {0, epoch, 0}: ${res}`);
    const epoch = res[1];
    const p = await published();
    assert.equal(p.length, 1, 'online published once');
    assert.equal(p[0].channel, 'parley:presence:bob', 'online published once: channel');
    assert.deepEqual(unpack(p[0].payload), { kind: 'online', from: 'bob' }, 'online published once: payload');
    assert.equal(await r.call('SISMEMBER', 'parley:online', 'bob'), 1, 'bob online');
    res = await sopen('bob', 'gw2', 3);
    assert.ok(res[1].equals(epoch), 'second session: same epoch, no presence (epoch)');
    assert.deepEqual(await published(), [], 'second session: same epoch, no presence');
});

cluster.test('send: stored in history and both inboxes, one envelope per gateway, acked to the sending connection', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { r, send, published, lastEntry } = await aliceAndBob(t);
    const res = await send('alice', 'bob', 'hi bob', 'c1', 'gwA#5', 5);
    assert.ok(Array.isArray(res) && res[0] === 1 && res[1] === 1 && res[2] > 1.7e12, `send returns {id, sender seq, sent}: ${JSON.stringify(res)}`);
    const sent = res[2];
    const p = await published();
    assert.deepEqual(
        p.map((m) => m.channel).sort(),
        ['parley:gw:gw1', 'parley:gw:gw2', 'parley:gw:gwA'],
        'one publish per gateway (bob on gw1, gw2; ack to gwA; alice has no other session)',
    );
    for (const { channel, env } of p) {
        if (channel === 'parley:gw:gw1' || channel === 'parley:gw:gw2') {
            assert.ok(env.t === 'u' && env.u === 'bob' && env.s === 1 && !('x' in env), `delivery envelope to ${channel}: ${JSON.stringify(env)}`);
            assert.deepEqual(env.f, { kind: 'text', id: 1, seq: 1, from: 'alice', to: 'bob', data: 'hi bob', sent, cid: 'c1' }, `text frame ${channel}`);
        } else {
            assert.deepEqual(env, { t: 'c', c: 5, s: 1, f: { kind: 'ack', cid: 'c1', id: 1, seq: 1, sent } }, 'ack envelope');
        }
    }
    const hist = await r.callBuffers('ZRANGE', 'parley:{c:alice|bob}:history', 0, -1);
    assert.ok(hist.length === 1 && !('seq' in unpack(hist[0])) && unpack(hist[0]).id === 1, 'history has the frame without seq');
    assert.equal((await lastEntry('bob')).seq, 1, 'bob inbox seq 1');
    assert.equal((await lastEntry('alice')).seq, 1, 'alice inbox seq 1');
    assert.equal(await r.call('HGET', U('bob', 'meta'), 'pushed'), null, 'pushed not tracked per message while bob has sessions');
    assert.equal(await r.call('HGET', U('bob', 'unread'), 'alice'), '1', 'bob has 1 unread from alice');
    assert.equal(await r.call('HGET', U('alice', 'unread'), 'bob'), null, "the sender's own message is not unread");
    assert.deepEqual(await r.call('SMEMBERS', U('alice', 'contacts')), ['bob'], 'contacts both ways (alice)');
    assert.deepEqual(await r.call('SMEMBERS', U('bob', 'contacts')), ['alice'], 'contacts both ways (bob)');
    assert.notEqual(await r.call('HGET', U('alice', 'cids'), 'c1'), null, 'cid remembered, hash with TTL 2 x ttl (cid)');
    const ttl = await r.call('TTL', U('alice', 'cids'));
    assert.ok(ttl > 86400 && ttl <= 2 * 86400, `cid remembered, hash with TTL 2 x ttl: ${ttl}`);
});

cluster.test('send: a retried cid returns dup and re-publishes only the ack', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { r, send, published } = await aliceAndBob(t);
    const [id, seq, sent] = await send('alice', 'bob', 'hi bob', 'c1', 'gwA#5', 5);
    await published();
    const res = await send('alice', 'bob', 'hi bob', 'c1', 'gwA#5', 5);
    assert.deepEqual(res, [id, seq, sent, 'dup'], 'retry returns dup');
    assert.deepEqual(res.slice(0, 2), [1, 1], 'retry returns dup: id 1, seq 1');
    const p = await published();
    assert.ok(p.length === 1 && p[0].channel === 'parley:gw:gwA' && p[0].env.f.id === 1, `retry re-publishes only the ack: ${JSON.stringify(p)}`);
    assert.equal(await r.call('LLEN', U('bob', 'inbox')), 1, 'no second copy');
});

cluster.test('send to an unknown user: no_such_user to the sending connection, no id consumed', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { r, send, published } = await aliceAndBob(t);
    await send('alice', 'bob', 'hi bob', 'c1', 'gwA#5', 5);
    await published();
    assert.equal(await send('alice', 'zed', 'x', 'c2', 'gwA#5', 5), 'no_such_user', 'send to unknown user');
    const p = await published();
    assert.equal(p.length, 1, 'error envelope: one');
    assert.deepEqual(p[0].env, { t: 'c', c: 5, f: { kind: 'error', code: 'no_such_user', message: 'no such user: zed', cid: 'c2' } }, 'error envelope');
    assert.equal(await r.call('GET', 'parley:ids'), '1', 'no id consumed');
});

cluster.test("send: the sender's other sessions get a copy marked with the sending session", { skip: ONE_REDIS_ONLY }, async (t) => {
    const { send, sopen, published } = await aliceAndBob(t);
    await send('alice', 'bob', 'hi bob', 'c1', 'gwA#5', 5);
    await sopen('alice', 'gwB', 9);
    await sopen('alice', 'gwA', 6);
    await published();
    const res = await send('alice', 'bob', 'second', 'c3', 'gwA#5', 5);
    assert.deepEqual(res.slice(0, 2), [2, 2], 'second message id 2, alice seq 2');
    const copies = (await published()).filter(({ env }) => env.t === 'u' && env.u === 'alice');
    assert.deepEqual(copies.map((m) => m.channel).sort(), ['parley:gw:gwA', 'parley:gw:gwB'], "alice's copy to gwA (conn 6) and gwB with x = sending session");
    assert.ok(
        copies.every(({ env }) => env.x === 'gwA#5'),
        "alice's copy to gwA (conn 6) and gwB with x = sending session: x",
    );
});

cluster.test('send to a user without a session: kept in the inbox, pointed to by the next session_open', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { r, send, sopen, published } = await aliceAndBob(t);
    await send('alice', 'carol', 'for later', 'c4', 'gwA#5', 5);
    await published();
    assert.equal(await r.call('HGET', U('carol', 'meta'), 'pushed'), null, 'carol pushed unset while offline');
    let res = await sopen('carol', 'gw1', 11);
    // the offline entries are (from, seq]: the gateway fetches them page by page with sync
    assert.ok(res[0] === 1 && res.length === 3 && res[2] === 0, `session_open returns where the offline entries start: ${res}`);
    assert.equal(await r.call('HGET', U('carol', 'meta'), 'pushed'), '1', 'pushed set on open');
    res = await sopen('carol', 'gw2', 12);
    assert.equal(res[2], res[0], 'second open: nothing pending (from = seq)');
});

cluster.test('send to oneself: one inbox entry, to every session but the sending one, one ack, no self contact', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { r, send, sopen, published } = await aliceAndBob(t);
    await send('alice', 'bob', 'hi bob', 'c1', 'gwA#5', 5);
    await sopen('alice', 'gwB', 9);
    await sopen('alice', 'gwA', 6);
    await published();
    const seq = Number(await r.call('HGET', U('alice', 'meta'), 'seq'));
    const len = await r.call('LLEN', U('alice', 'inbox'));
    const res = await send('alice', 'alice', 'note', 'c5', 'gwA#5', 5);
    assert.equal(res[1], seq + 1, `self-send: alice seq ${JSON.stringify(res)}`);
    const p = await published();
    assert.deepEqual(
        p
            .filter(({ env }) => env.t === 'u')
            .map((m) => m.channel)
            .sort(),
        ['parley:gw:gwA', 'parley:gw:gwB'],
        'self-send deliveries + one ack',
    );
    assert.equal(p.filter(({ env }) => env.t === 'c').length, 1, 'self-send deliveries + one ack: the ack');
    assert.equal(await r.call('LLEN', U('alice', 'inbox')), len + 1, 'one inbox entry for self-send');
    assert.equal(await r.call('SISMEMBER', U('alice', 'contacts'), 'alice'), 0, 'no self contact');
});

cluster.test(
    'sync: the entries after a seq of the same epoch; not recovered for another epoch, a seq ahead, a gap past the cap',
    { skip: ONE_REDIS_ONLY },
    async (t) => {
        const { r, send, sync } = await aliceAndBob(t);
        for (let i = 1; i <= 4; i++) await send('alice', 'bob', `m${i}`, `c${i}`, 'gwA#5', 5);
        const seq = Number(await r.call('HGET', U('alice', 'meta'), 'seq'));
        const ep = await r.call('HGET', U('alice', 'meta'), 'epoch');
        assert.equal(seq, 4, 'alice has 4 entries');
        let res = await sync('alice', 1, ep);
        assert.ok(res[0] === 1 && res[1] === seq, `sync after 1 returns 2..4: ${res.slice(0, 2)}`);
        assert.deepEqual(
            res.slice(2).map((x) => unpack(x).seq),
            [2, 3, 4],
            'sync after 1 returns 2..4',
        );
        assert.deepEqual(await sync('alice', seq, ep), [1, seq], 'sync at head: recovered, nothing');
        assert.deepEqual(await sync('alice', 1, 'other'), [0, seq], 'sync with a different epoch: not recovered');
        assert.deepEqual(await sync('alice', seq + 5, ep), [0, seq], 'sync after > seq: not recovered');
        await r.call('LPOP', U('alice', 'inbox'));
        await r.call('LPOP', U('alice', 'inbox'));
        assert.deepEqual(await sync('alice', 1, ep), [0, seq], 'sync past the cap: not recovered');
        res = await sync('alice', 2, ep);
        assert.ok(res[0] === 1 && res.length === 4, 'sync just inside the cap: recovered');
    },
);

cluster.test('sync pages: at most n entries, and past the first at most B bytes, contiguous from after+1', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { r, send, sync } = await aliceAndBob(t);
    for (let i = 1; i <= 10; i++) await send('alice', 'bob', `${i}`.padEnd(1000, '.'), `c${i}`, 'gwA#5', 5);
    const ep = await r.call('HGET', U('alice', 'meta'), 'epoch');
    const seqs = (res) => res.slice(2).map((x) => unpack(x).seq);
    const bytes = (res) => res.slice(2).reduce((n, x) => n + x.length, 0);
    let res = await sync('alice', 0, ep, 4);
    assert.deepEqual([res[0], res[1], seqs(res)], [1, 10, [1, 2, 3, 4]], 'n bounds the page');
    res = await sync('alice', 4, ep, 100, 2500);
    assert.deepEqual(seqs(res), [5, 6], 'B bounds the page');
    assert.ok(bytes(res) <= 2500, `${bytes(res)} bytes <= 2500`);
    res = await sync('alice', 6, ep, 100, 10);
    assert.deepEqual(seqs(res), [7], 'one entry always, so a page moves on');
    res = await sync('alice', 7, ep, 100, 1 << 20);
    assert.deepEqual(seqs(res), [8, 9, 10], 'the last page ends at seq');
});

cluster.test('history: at most limit entries and, past the newest, at most B bytes; more when cut', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { send, ev } = await aliceAndBob(t);
    for (let i = 1; i <= 10; i++) await send('alice', 'bob', `${i}`.padEnd(1000, '.'), `c${i}`, 'gwA#5', 5);
    const hist = (before, limit, b) =>
        ev('history', [U('bob', 'account'), U('bob', 'account')], ['alice', '0', 'parley:{c:alice|bob}:history', before, limit, b], { buffers: true });
    const datas = (res) => res.slice(1).map((x) => parseInt(unpack(x).data, 10));
    let res = await hist(0, 100, 1 << 20);
    assert.deepEqual([res[0], datas(res)], [0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]], 'small: everything, no more');
    res = await hist(0, 100, 2500);
    assert.deepEqual([res[0], datas(res)], [1, [9, 10]], 'B cuts: the newest two, more');
    assert.ok(res.slice(1).reduce((n, x) => n + x.length, 0) <= 2500, 'within B bytes');
    res = await hist(0, 100, 10);
    assert.deepEqual([res[0], datas(res)], [1, [10]], 'one message always');
    res = await hist(0, 10, 1 << 20);
    assert.deepEqual([res[0], datas(res)], [0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]], 'exactly limit, none older: no more');
    res = await hist(0, 9, 1 << 20);
    assert.deepEqual([res[0], datas(res).length], [1, 9], 'limit cuts: more');
});

cluster.test("typing: one envelope to each of the recipient's gateways, nothing for an unknown user", async (t) => {
    const { r, steps, published } = await aliceAndBob(t);
    const typing = (to) =>
        steps(
            'typing',
            [U(to, 'account'), U(to, 'sessions'), U(to, 'hidden')],
            [
                'parley:gw:',
                to,
                Buffer.from(encode({ kind: 'typing' })),
                '0',
                'alice',
                U('%s', 'sessions'),
                1000,
                5000,
                U('alice', `typing:${to}`),
                'parley:gateways',
            ],
        );
    let res = await typing('bob');
    const p = await published();
    assert.equal(res, 1, "typing to bob's gateways: reply");
    assert.deepEqual(p.map((m) => m.channel).sort(), ['parley:gw:gw1', 'parley:gw:gw2'], "typing to bob's gateways");
    assert.ok(p[0].env.t === 'u' && !('s' in p[0].env), `typing to bob's gateways: envelope ${JSON.stringify(p[0].env)}`);
    assert.equal(await typing('bob'), 1, 'typing again within the window: reply as if sent');
    assert.deepEqual(await published(), [], 'typing again within the window: nothing published');
    assert.ok((await r.call('PTTL', U('alice', 'typing:bob'))) > 0, 'the throttle key expires');
    res = await typing('zed');
    assert.equal(res, 0, 'typing to unknown user');
    assert.deepEqual(await published(), [], 'typing to unknown user: nothing published');
});

cluster.test('contacts: everyone mode up to the limit, the contacts set beyond it; online flag and last message each', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { send, sopen, contacts } = await aliceAndBob(t);
    await sopen('carol', 'gw1', 11);
    await send('alice', 'bob', 'hi bob', 'c1', 'gwA#5', 5);
    await send('alice', 'bob', 'second', 'c3', 'gwA#5', 5);
    await send('alice', 'carol', 'for later', 'c4', 'gwA#5', 5);
    // {mode, next cursor ("" when done), then 7 fields per entry}
    const every7 = (res, from) => res.filter((_, i) => i >= from && (i - from) % 7 === 0).map(str);
    let res = await contacts('alice', 200);
    assert.equal(res[0], 1, 'contacts everyone mode');
    assert.equal(str(res[1]), '', 'a short list is one page');
    assert.deepEqual(every7(res, 2), ['bob', 'carol'], 'contacts everyone mode: names');
    assert.deepEqual(every7(res, 3), [1, 1], 'contacts everyone mode: online');
    assert.ok(unpack(res[7]).data === 'second' && unpack(res[14]).data === 'for later', 'last message of each conversation');
    res = await contacts('alice', 2);
    assert.equal(res[0], 0, 'contacts set mode');
    assert.deepEqual(every7(res, 2).sort(), ['bob', 'carol'], 'contacts set mode: names');
    res = await contacts('bob', 1);
    assert.ok(res[0] === 0 && res[3] === 1, `bob's contacts: ${res.slice(0, 7).map(str)}`);
    assert.deepEqual(every7(res, 2), ['alice'], "bob's contacts");
});

cluster.test(
    'contacts: pages of at most n entries with a cursor; `last` cut to a preview on a UTF-8 boundary, marked truncated',
    { skip: ONE_REDIS_ONLY },
    async (t) => {
        const { r, send, contacts } = await aliceAndBob(t);
        const many = ['dan', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo'];
        for (const u of many) await r.call('ZADD', 'parley:users', 0, u);
        // 'é' is 2 bytes: a cut at an odd byte count must not split one
        await send('alice', 'bob', `a${'é'.repeat(300)}`, 'c1', 'gwA#5', 5);
        let cursor = '';
        const seen = [];
        let pages = 0;
        do {
            const res = await contacts('alice', 200, cursor, 3, 16);
            pages++;
            assert.ok(res.length - 2 <= 3 * 7, `page ${pages}: at most 3 entries (${(res.length - 2) / 7})`);
            for (let i = 2; i < res.length; i += 7) {
                seen.push(str(res[i]));
                if (str(res[i]) === 'bob') {
                    const last = unpack(res[i + 5]);
                    assert.equal(last.truncated, true, 'a long last is marked truncated');
                    assert.equal(last.data, `a${'é'.repeat(7)}`, 'cut at 16 bytes on a character boundary (15 bytes)');
                    assert.equal(last.id > 0 && last.from, 'alice', 'the rest of the message is kept');
                }
            }
            cursor = str(res[1]);
            assert.ok(pages < 20, 'the cursor ends');
        } while (cursor !== '');
        const everyone = (await r.call('ZRANGE', 'parley:users', 0, -1)).filter((u) => u !== 'alice');
        assert.deepEqual(seen.sort(), everyone.sort(), 'every user once over the pages');
        assert.ok(pages >= Math.ceil(everyone.length / 3), `${pages} pages`);
    },
);

cluster.test('contacts beyond the everyone limit: the contacts set and the groups paged by name, exactly n a page, each once', async (t) => {
    const { r, contacts } = await aliceAndBob(t);
    const friends = Array.from({ length: 11 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    await r.call('SADD', U('alice', 'contacts'), ...friends);
    const groups = ['#g1', '#g2', '#g3', '#g4'];
    await r.call('SADD', U('alice', 'groups'), ...groups);
    let cursor = '';
    const pages = [];
    do {
        const res = await contacts('alice', 1, cursor, 4);
        pages.push(
            res
                .slice(2)
                .filter((_, i) => i % 7 === 0)
                .map(str),
        );
        cursor = str(res[1]);
        assert.ok(pages.length < 10, 'the cursor ends');
    } while (cursor !== '');
    assert.deepEqual(
        pages.map((p) => p.length),
        [4, 4, 4, 3],
        `15 entries in pages of 4: ${JSON.stringify(pages)}`,
    );
    assert.deepEqual(pages.flat(), [...friends, ...groups], 'names in order, then groups, each once');
});

// All pages of alice's list beyond the everyone limit (limit 1), n a page:
// the names of each page.
async function contactPages(contacts, n, maxPages = 400) {
    let cursor = '';
    const pages = [];
    do {
        const res = await contacts('alice', 1, cursor, n);
        assert.equal(res[0], 0, 'contacts set mode');
        pages.push(
            res
                .slice(2)
                .filter((_, i) => i % 7 === 0)
                .map(str),
        );
        cursor = str(res[1]);
        assert.ok(pages.length < maxPages, `the cursor ends (${cursor})`);
    } while (cursor !== '');
    return pages;
}

cluster.test(
    "contacts beyond the everyone limit: then the members of the user's groups, by group and name, each once, at most n a page",
    { skip: ONE_REDIS_ONLY },
    async (t) => {
        const { r, contacts, send } = await aliceAndBob(t);
        const m = (i) => `m${String(i).padStart(2, '0')}`;
        const friends = ['f1', m(5)]; // m05 is a 1:1 contact too: listed once, as a contact
        await r.call('SADD', U('alice', 'contacts'), ...friends);
        await r.call('SADD', U('alice', 'groups'), '#ga', '#gb');
        const ga = Array.from({ length: 30 }, (_, i) => m(i));
        const gb = Array.from({ length: 30 }, (_, i) => m(i + 20)); // m20..m29 in both
        await r.call('SADD', 'parley:{g:#ga}:members', 'alice', ...ga);
        await r.call('SADD', 'parley:{g:#gb}:members', 'alice', ...gb);
        await r.call('SADD', 'parley:online', m(40));
        await send('bob', m(41), 'hi', 'c1', 'gw1#7', 7); // a member's own 1:1 history: not alice's
        const pages = await contactPages(contacts, 10);
        for (const p of pages) assert.ok(p.length <= 10, `at most 10 a page: ${JSON.stringify(pages)}`);
        const members = [...new Set([...ga, ...gb])].filter((u) => !friends.includes(u)).sort();
        assert.deepEqual(
            pages.flat(),
            [...friends.sort(), '#ga', '#gb', ...members],
            '1:1 contacts, groups, then the members (not alice, not a 1:1 contact, a member of both groups once)',
        );
        assert.equal(pages.flat().length, 2 + 2 + 49, '2 contacts, 2 groups, 50 members but m05');
        assert.ok(pages.length <= Math.ceil(53 / 10) + 1, `${pages.length} pages for 53 entries`);
        // a member's entry is a contact's: online, counters and the 1:1 preview (none here)
        let cursor = '';
        const seen = new Map();
        do {
            const res = await contacts('alice', 1, cursor, 50);
            for (let i = 2; i < res.length; i += 7) seen.set(str(res[i]), res.slice(i + 1, i + 6).map(str));
            cursor = str(res[1]);
        } while (cursor !== '');
        assert.deepEqual(seen.get(m(40)), [1, 0, 0, 0, ''], 'an online member: online 1, no counters, no last');
        assert.deepEqual(seen.get(m(41)), [0, 0, 0, 0, ''], "another's 1:1 history is not a preview");
        // everyone mode lists no member phase: every user once
        const res = await contacts('alice', 1000, '', 1000);
        assert.equal(str(res[1]), '', 'everyone mode: one page');
    },
);

cluster.test('contacts member phase: big sets scanned, more than 32 groups repeat shared members, bounded work per call', async (t) => {
    const { r, contacts } = await aliceAndBob(t);
    // 40 groups (> 32: no look-back) of 3, all sharing `common`
    const groups = Array.from({ length: 40 }, (_, i) => `#s${String(i).padStart(2, '0')}`);
    await r.call('SADD', U('alice', 'groups'), ...groups);
    for (const [i, g] of groups.entries()) await r.call('SADD', `parley:{g:${g}}:members`, 'alice', 'common', `u${i}`);
    let pages = await contactPages(contacts, 10);
    let names = pages.flat().filter((x) => !x.startsWith('#'));
    for (const p of pages) assert.ok(p.length <= 10, `at most 10 a page (${p.length})`);
    assert.deepEqual([...new Set(names)].sort(), ['common', ...groups.map((_, i) => `u${i}`)].sort(), 'every member of 40 groups (repeats allowed)');
    assert.equal(names.filter((x) => x === 'common').length, 40, 'beyond 32 groups, a shared member once per group');

    // a group of 300 (> 128: SSCAN) and 200 more groups (> 128 groups: SSCAN order)
    await r.call('DEL', U('alice', 'groups'));
    const big = Array.from({ length: 300 }, (_, i) => `b${i}`);
    await r.call('SADD', 'parley:{g:#big}:members', 'alice', ...big);
    const many = Array.from({ length: 200 }, (_, i) => `#t${i}`);
    for (const [i, g] of many.entries()) await r.call('SADD', `parley:{g:${g}}:members`, `t${i}`);
    await r.call('SADD', U('alice', 'groups'), '#big', ...many);
    pages = await contactPages(contacts, 20);
    names = pages.flat().filter((x) => !x.startsWith('#'));
    for (const p of pages) assert.ok(p.length <= 40, `about 20 a page from SSCAN (${p.length})`);
    assert.deepEqual(
        [...new Set(names)].sort(),
        [...big, ...many.map((_, i) => `t${i}`)].sort(),
        'every member of a big group and of 200 groups, in SSCAN order',
    );
    assert.equal(pages.flat().filter((x) => x.startsWith('#')).length, 201, 'each group once');

    // bounded work: 500 members who are all 1:1 contacts yield nothing, at most 4n looked at a call
    await r.call('DEL', U('alice', 'groups'));
    const known = Array.from({ length: 100 }, (_, i) => `k${i}`);
    await r.call('SADD', 'parley:{g:#known}:members', 'alice', ...known);
    await r.call('SADD', U('alice', 'contacts'), ...known);
    await r.call('SADD', U('alice', 'groups'), '#known');
    pages = await contactPages(contacts, 5);
    assert.deepEqual(
        pages.flat().filter((x) => !x.startsWith('#')),
        known.sort(),
        'only the contacts, each once (none again as a member)',
    );
    assert.ok(pages.length >= 100 / 5 + 100 / 20, `${pages.length} calls: no call looks at more than 4n members`);
});

cluster.test("contacts: a big group's online flag is exact up to 1,024 names, judged from a sample beyond (bounded work)", async (t) => {
    const { r, contacts } = await aliceAndBob(t);
    const entry = (res, name) => {
        for (let i = 2; i < res.length; i += 7) if (str(res[i]) === name) return res[i + 1];
        return undefined;
    };
    const many = (p, n) => Array.from({ length: n }, (_, i) => `${p}${i}`);
    // 1,100 members, 1,100 other users online: both sets over 1,024
    await r.call('SADD', 'parley:{g:#huge}:members', 'alice', ...many('h', 1100));
    await r.call('SADD', U('alice', 'groups'), '#huge');
    await r.call('SADD', 'parley:online', ...many('x', 1100));
    const flag = async () => entry(await contacts('alice', 1, '', 2000), '#huge');
    assert.equal(await flag(), 0, 'nobody of the group online: false');
    await r.call('SADD', 'parley:online', 'alice');
    assert.equal(await flag(), 0, 'the user himself does not count');
    await r.call('SADD', 'parley:online', ...many('h', 1100));
    assert.equal(await flag(), 1, 'every member online: the sample finds one');
    // one member online, few users online (<= 1,024): exact
    await r.call('DEL', 'parley:online');
    await r.call('SADD', 'parley:online', 'h7');
    assert.equal(await flag(), 1, 'one member of 1,100 online, exact while few users are online');
});

// The roles field (7th) of each entry of a contacts page: {name: roles}; a
// group's as {owner, role, more, admins}, a person's 0.
async function contactRoles(contacts, user, n = 100) {
    const out = {};
    let cursor = '';
    do {
        const res = await contacts(user, 1000, cursor, n);
        for (let i = 2; i < res.length; i += 7) {
            const ro = res[i + 6];
            out[str(res[i])] = Array.isArray(ro) ? { owner: str(ro[0]), role: str(ro[1]), more: ro[2], admins: ro[3].map(str) } : ro;
        }
        cursor = str(res[1]);
    } while (cursor !== '');
    return out;
}

cluster.test("contacts: a group entry carries its owner, the user's own role and the admins (32 at most, sorted, more when cut); a person's 0", async (t) => {
    const s = await aliceAndBob(t);
    const { r, group, contacts } = s;
    const ms = Array.from({ length: 40 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    for (const u of ms) await s.register(u);
    assert.deepEqual(await group('create', '#r', 'alice', ['bob', 'carol', ...ms]), ['ok']);
    let alice = await contactRoles(contacts, 'alice');
    assert.equal(alice.bob, 0, "a person's roles: 0");
    assert.deepEqual(alice['#r'], { owner: 'alice', role: 'owner', more: 0, admins: [] }, 'the creator: owner, no admins yet');
    assert.deepEqual(await group('promote', '#r', 'alice', ['carol']), ['ok']);
    assert.deepEqual(await group('promote', '#r', 'alice', ['bob']), ['ok']);
    assert.deepEqual(
        (await contactRoles(contacts, 'bob'))['#r'],
        { owner: 'alice', role: 'admin', more: 0, admins: ['bob', 'carol'] },
        'an admin, the admins sorted by name',
    );
    assert.deepEqual((await contactRoles(contacts, 'm00'))['#r'], { owner: 'alice', role: 'member', more: 0, admins: ['bob', 'carol'] }, 'a member');
    // 40 more (reversed: promotion order is not name order): 42 admins, cut to the 32 promoted earliest
    const rev = [...ms].reverse();
    for (let i = 0; i < rev.length; i += 10) assert.deepEqual(await group('promote', '#r', 'alice', rev.slice(i, i + 10)), ['ok']);
    alice = await contactRoles(contacts, 'alice');
    const earliest = ['carol', 'bob', ...rev.slice(0, 30)].sort();
    assert.deepEqual(alice['#r'], { owner: 'alice', role: 'owner', more: 1, admins: earliest }, 'cut at 32: the 32 promoted earliest, sorted, more 1');
    assert.equal((await contactRoles(contacts, 'm00'))['#r'].role, 'admin', 'an admin beyond the 32 listed still knows his role');
    // exactly 32: not cut
    assert.deepEqual(await group('demote', '#r', 'alice', rev.slice(30)), ['ok']);
    alice = await contactRoles(contacts, 'alice');
    assert.deepEqual(alice['#r'], { owner: 'alice', role: 'owner', more: 0, admins: earliest }, 'exactly 32 admins: all of them, more 0');
    // the owner leaves: the heir is the new owner
    assert.deepEqual(await group('leave', '#r', 'alice'), ['ok']);
    assert.deepEqual((await contactRoles(contacts, 'carol'))['#r'].owner, 'carol', 'the heir (promoted earliest) is the owner');
    assert.equal((await contactRoles(contacts, 'carol'))['#r'].role, 'owner', 'and knows it');
    // a group from before roles, never changed since: no owner, nobody admin, everyone a member
    await r.call('SADD', 'parley:{g:#old}:members', 'alice', 'bob');
    await r.call('HSET', 'parley:{g:#old}:meta', 'open', '0', 'by', 'alice', 'created', 1);
    await r.call('SADD', U('alice', 'groups'), '#old');
    assert.deepEqual(
        (await contactRoles(contacts, 'alice'))['#old'],
        { owner: '', role: 'member', more: 0, admins: [] },
        'a pre-roles group: no owner, role member',
    );
    assert.equal(await r.call('HGET', 'parley:{g:#old}:meta', 'owner'), null, 'listing it does not give it roles (read only)');
});

cluster.test('contacts: the roles of 50 groups of 1,000 admins each in one page stay bounded (measured)', async (t) => {
    const { r, contacts } = await aliceAndBob(t);
    const admins = Array.from({ length: 1000 }, (_, i) => `a${String(i).padStart(4, '0')}`);
    const groups = Array.from({ length: 50 }, (_, i) => `#h${String(i).padStart(2, '0')}`);
    for (const g of groups) {
        await r.call('SADD', `parley:{g:${g}}:members`, 'alice', ...admins);
        await r.call('HSET', `parley:{g:${g}}:meta`, 'open', '0', 'by', 'alice', 'created', 1, 'owner', 'alice');
        await r.call('ZADD', `parley:{g:${g}}:admins`, ...admins.flatMap((u, i) => [i, u]));
    }
    await r.call('SADD', U('alice', 'groups'), ...groups);
    await r.call('DEL', 'parley:users'); // everyone mode, the people: none but the three
    for (const u of ['alice', 'bob', 'carol']) await r.call('ZADD', 'parley:users', 0, u);
    // every call logged (the commands inside scripts too), all kept
    await r.call('CONFIG', 'SET', 'slowlog-log-slower-than', 0, 'slowlog-max-len', 100000);
    await r.call('SLOWLOG', 'RESET');
    const res = await contacts('alice', 1000, '', 60);
    const log = await r.call('SLOWLOG', 'GET', -1);
    await r.call('CONFIG', 'SET', 'slowlog-log-slower-than', 10000, 'slowlog-max-len', 128);
    // the page is a chain of steps (contacts.lua): the longest of them
    const steps = log.filter((e) => String(e[3][0]).toUpperCase().startsWith('EVAL')).map((e) => e[2]);
    t.diagnostic(
        `a page of 2 people + 50 groups of 1,000 admins: ${steps.length} steps, the longest ${Math.max(...steps)} us, ${steps.reduce((a, b) => a + b, 0)} us in all (SLOWLOG)`,
    );
    let seen = 0;
    for (let i = 2; i < res.length; i += 7) {
        if (!str(res[i]).startsWith('#')) continue;
        seen++;
        const ro = res[i + 6];
        assert.ok(ro[3].length === 32 && ro[2] === 1 && str(ro[1]) === 'owner', `${str(res[i])}: 32 admins, more`);
    }
    assert.equal(seen, 50, 'the 50 groups in one page');
});

cluster.test(
    'session_close: not while reaping a live gateway; the last close goes offline, records pushed, announces once',
    { skip: ONE_REDIS_ONLY },
    async (t) => {
        const { r, send, sclose, published } = await aliceAndBob(t);
        await send('alice', 'bob', 'hi bob', 'c1', 'gwA#5', 5);
        await published();
        await r.call('SET', 'parley:gw:gw1:alive', '1', 'PX', 60000);
        assert.equal(await sclose('bob', 'gw1', 7, true), -1, 'reaping a gateway whose alive key is back: -1, nothing closed');
        assert.deepEqual(await published(), [], 'reaping a gateway whose alive key is back: -1, nothing closed (nothing published)');
        assert.equal(await r.call('SISMEMBER', U('bob', 'sessions'), 'gw1#7'), 1, 'reaping a gateway whose alive key is back: -1, nothing closed (session)');
        assert.equal(
            await r.call('SISMEMBER', 'parley:gw:gw1:sessions', 'bob#7'),
            1,
            'reaping a gateway whose alive key is back: -1, nothing closed (gateway set)',
        );
        assert.equal(await sclose('bob', 'gw1', 7), 0, 'close one of two: not last');
        assert.deepEqual(await published(), [], 'close one of two: not last (nothing published)');
        await r.call('DEL', 'parley:gw:gw1:alive');
        const bobSeq = await r.call('HGET', U('bob', 'meta'), 'seq');
        assert.equal(await sclose('bob', 'gw2', 3), 1, 'close the last: 1, and pushed = seq');
        assert.equal(await r.call('HGET', U('bob', 'meta'), 'pushed'), bobSeq, 'close the last: 1, and pushed = seq (pushed)');
        const p = await published();
        assert.equal(p.length, 1, 'offline published (once)');
        assert.deepEqual(unpack(p[0].payload), { kind: 'offline', from: 'bob' }, 'offline published');
        assert.equal(await sclose('bob', 'gw2', 3), 0, 'second close is a no-op');
        assert.deepEqual(await published(), [], 'second close is a no-op (nothing published)');
        assert.equal(await r.call('SISMEMBER', 'parley:online', 'bob'), 0, 'bob offline');
        assert.equal(await r.call('SISMEMBER', 'parley:gw:gw2:sessions', 'bob#3'), 0, 'gateway set cleaned');
    },
);

cluster.test(
    'session_close without a send (runs on a one-node cluster too): reaping stops at a live alive key; the last close goes offline once, pushed = seq',
    async (t) => {
        const { r, register, sopen, sclose, published } = await fresh(t);
        await register('cy');
        await sopen('cy', 'gw1', 1);
        await sopen('cy', 'gw2', 2);
        await r.call('HSET', U('cy', 'meta'), 'seq', 7);
        await published();
        await r.call('SET', 'parley:gw:gw1:alive', '1', 'PX', 60000);
        assert.equal(await sclose('cy', 'gw1', 1, true), -1, 'reaping a live gateway: -1');
        assert.equal(await r.call('SISMEMBER', U('cy', 'sessions'), 'gw1#1'), 1, 'nothing closed');
        assert.equal(await sclose('cy', 'gw1', 1), 0, 'one of two: not the last');
        assert.equal(await r.call('SISMEMBER', 'parley:gw:gw1:sessions', 'cy#1'), 0, 'its gateway set cleaned');
        assert.equal(await sclose('cy', 'gw2', 2), 1, 'the last');
        assert.equal(await r.call('HGET', U('cy', 'meta'), 'pushed'), '7', 'pushed = seq');
        const p = (await published()).filter((m) => m.channel === 'parley:presence:cy');
        assert.deepEqual(
            p.map((m) => unpack(m.payload)),
            [{ kind: 'offline', from: 'cy' }],
            'offline once',
        );
        assert.equal(await r.call('SISMEMBER', 'parley:online', 'cy'), 0);
        assert.equal(await sclose('cy', 'gw2', 2), 0, 'again: a no-op');
        assert.deepEqual(await published(), [], 'announcing nothing');
    },
);

cluster.test(
    'one user opening and closing sessions on two gateways at once: parley:online, the mark, the last announcement and the gateway sets follow the final session set',
    async (t) => {
        const { r, sha, register, published } = await fresh(t);
        const r2 = await Conn.open(cluster.redisPort);
        const lim = await Subscriber.open(cluster.redisPort, 'parley:sessions:limit');
        t.after(() => {
            r2.close();
            lim.close();
        });
        await register('zz');
        const LIMIT = 3;
        const ops = [];
        for (let round = 0; round < 20; round++)
            for (const [conn, gw] of [
                [r, 'gw1'],
                [r2, 'gw2'],
            ])
                for (let c = 1; c <= 3; c++) {
                    const id = round * 10 + c;
                    ops.push(
                        (async () => {
                            await sessionOpen(conn, sha, 'zz', gw, id, { limit: LIMIT });
                            if ((id + round) % 3) await sessionClose(conn, sha, 'zz', gw, id);
                        })(),
                    );
                }
        await Promise.all(ops);
        const set = (await r.call('SMEMBERS', U('zz', 'sessions'))).sort();
        const n = set.length;
        assert.equal(await r.call('SISMEMBER', 'parley:online', 'zz'), n > 0 ? 1 : 0, `online iff sessions (${n})`);
        const kinds = (await published()).filter((m) => m.channel === 'parley:presence:zz').map((m) => unpack(m.payload).kind);
        assert.ok(kinds.length > 0 && kinds.at(-1) === (n > 0 ? 'online' : 'offline'), `the last announcement says the final state: ${kinds.join(' ')}`);
        assert.ok(
            kinds.every((k, i) => i === 0 || k !== kinds[i - 1]),
            `announcements alternate: ${kinds.join(' ')}`,
        );
        assert.equal(await r.call('HGET', 'parley:sessions:full', 'zz'), n >= LIMIT ? String(LIMIT) : null, `the mark follows the set (${n})`);
        const said = (await lim.drain(r)).map((m) => str(m.payload).split(' ')[0]);
        assert.equal(said.at(-1), n >= LIMIT ? 'full' : 'free', `the last limit announcement: ${said.join(' ')}`);
        const inGw = [
            ...(await r.call('SMEMBERS', 'parley:gw:gw1:sessions')).map((m) => `gw1#${m.split('#')[1]}`),
            ...(await r.call('SMEMBERS', 'parley:gw:gw2:sessions')).map((m) => `gw2#${m.split('#')[1]}`),
        ].sort();
        assert.deepEqual(inGw, set, 'the gateway sets hold exactly the open sessions');
    },
);

cluster.test('session_open/close with a session limit: refused past it, full and free announced, marks kept with the set', async (t) => {
    const { r, register, sopen, sclose } = await fresh(t);
    const sub = await Subscriber.open(cluster.redisPort, 'parley:sessions:*');
    t.after(() => sub.close());
    const said = async () => (await sub.drain(r)).map((m) => `${m.channel} ${str(m.payload)}`);
    const lim = { limit: 3 };
    await register('dan');
    assert.ok(Array.isArray(await sopen('dan', 'gw1', 1, lim)), 'first of 3: opened');
    assert.ok(Array.isArray(await sopen('dan', 'gw2', 1, lim)), 'second of 3: opened');
    assert.deepEqual(await said(), [], 'below the limit: nothing announced');
    assert.ok(Array.isArray(await sopen('dan', 'gw1', 2, lim)), 'third of 3: opened');
    assert.deepEqual(await said(), ['parley:sessions:limit full dan 3'], 'the third announces full');
    assert.equal(await r.call('HGET', 'parley:sessions:full', 'dan'), '3', 'the mark holds the limit');
    assert.equal(await sopen('dan', 'gw2', 2, lim), 3, 'a fourth is refused with the count');
    assert.equal(await r.call('SCARD', U('dan', 'sessions')), 3, 'the refused session is not in the set');
    assert.equal(await r.call('SISMEMBER', 'parley:gw:gw2:sessions', 'dan#2'), 0, 'nor in its gateway set');
    assert.deepEqual(await said(), ['parley:sessions:limit full dan 3'], 'a refusal announces full again (a gateway let it through)');
    assert.ok(Array.isArray(await sopen('dan', 'gw1', 1, { ...lim, reopen: true })), 'a re-open of a session in the set passes');
    assert.equal(await sopen('dan', 'gw2', 9, { ...lim, reopen: true }), 3, 'a re-open of a session out of the set (reaped) counts as new');
    assert.ok(Array.isArray(await sopen('dan', 'gw2', 9)), 'no limit given: opened (limit 0 is none)');
    await said();
    assert.equal(await sclose('dan', 'gw2', 9), 0, 'back to 3: still full');
    assert.deepEqual(await said(), [], 'back to 3: nothing announced');
    assert.equal(await sclose('dan', 'gw2', 2), 0, 'closing a refused session changes nothing');
    assert.deepEqual(await said(), [], 'closing a refused session announces nothing');
    assert.equal(await sclose('dan', 'gw1', 2, true), 0, 'the reaper closes one: below the limit');
    assert.deepEqual(await said(), ['parley:sessions:limit free dan'], 'free announced once below the mark');
    assert.equal(await r.call('HEXISTS', 'parley:sessions:full', 'dan'), 0, 'the mark is gone');
    assert.equal(await sclose('dan', 'gw1', 2), 0, 'a second close is a no-op');
    assert.deepEqual(await said(), [], 'a second close announces nothing');
    assert.ok(Array.isArray(await sopen('dan', 'gw2', 2, lim)), 'room again: opened');
    assert.ok(Array.isArray(await sopen('dan', 'gw2', 3, { limit: 5 })), 'a gateway with a higher limit: opened');
    assert.equal(await sopen('dan', 'gw2', 4, { limit: 2 }), 4, 'a gateway with a lower limit refuses');
    assert.deepEqual(
        await said(),
        ['parley:sessions:limit full dan 3', 'parley:sessions:limit full dan 3'],
        'the 3rd session marks 3; the refusal at 2 announces the mark it found (3 >= 2: full there too)',
    );
    assert.equal(await r.call('HGET', 'parley:sessions:full', 'dan'), '3', 'a lower limit never lowers the mark');

    // a mark left behind (here by hand) is deleted by the next open that finds the set below it
    await register('eve');
    await r.call('HSET', 'parley:sessions:full', 'eve', 3);
    assert.ok(Array.isArray(await sopen('eve', 'gw1', 1, lim)), 'eve under a stale mark: opened');
    assert.deepEqual(await said(), ['parley:sessions:limit free eve'], 'the stale mark is announced free');
    assert.equal(await r.call('HEXISTS', 'parley:sessions:full', 'eve'), 0, 'and deleted');
});

cluster.test(
    'session_open/close steps: a stale step changes nothing; a chain stopped after the user step is completed by the next open or close',
    async (t) => {
        const { r, sha, register, sopen, sclose, published } = await fresh(t);
        await register('bob');
        const presence = async () => (await published()).filter((m) => m.channel === 'parley:presence:bob').map((m) => unpack(m.payload).kind);
        // the user step of an open alone (its chain stopped there): its continuation, not followed
        const userStep = (gw, conn, opts) => {
            const tail = sessionOpenTail('bob', gw, conn, opts);
            return r.callBuffers('EVALSHA', sha.session_open, 4, ...tail.slice(5, 9), ...tail.slice(9));
        };
        const online = () => r.call('SISMEMBER', 'parley:online', 'bob');

        // an open's steps overtaken by its close: the open's online step comes last and is stale
        const stale = await userStep('gw1', 1);
        assert.equal(str(stale[0]), 'parley:next', 'the user step names the next step');
        assert.equal(await sclose('bob', 'gw1', 1), 1, 'the close runs whole');
        const res = await followSteps(r, sha, stale, { buffers: true });
        assert.ok(Array.isArray(res) && res.length === 3, `the late steps answer the open's reply: ${res}`);
        assert.equal(await online(), 0, 'the stale online step changed nothing');
        assert.deepEqual(await presence(), [], 'and announced nothing');
        assert.ok(Array.isArray(await sopen('bob', 'gw2', 2)), 'a new open');
        assert.equal(await online(), 1, 'online');
        assert.deepEqual(await presence(), ['online'], 'announced once');
        assert.equal(await sclose('bob', 'gw2', 2), 1);
        assert.deepEqual(await presence(), ['offline']);

        // stopped after the user step: in the user's set, not online; the gateway's re-open completes it
        await userStep('gw1', 3);
        assert.equal(await r.call('SISMEMBER', U('bob', 'sessions'), 'gw1#3'), 1, 'in the user set');
        assert.equal(await online(), 0, 'not online yet');
        assert.ok(Array.isArray(await sopen('bob', 'gw1', 3, { reopen: true })), 're-open');
        assert.equal(await online(), 1, 'the re-open put the user online');
        assert.deepEqual(await presence(), ['online'], 'announced once');
        assert.equal(await r.call('SISMEMBER', 'parley:gw:gw1:sessions', 'bob#3'), 1, 'in the gateway set');

        // a close stopped after its user step: offline in the user set only; a second close completes it
        const closeStep = await r.callBuffers(
            'EVALSHA',
            sha.session_close,
            2,
            U('bob', 'sessions'),
            U('bob', 'meta'),
            'bob',
            'gw1#3',
            'bob#3',
            'parley:presence:bob',
            '0',
            'parley:sessions:limit',
            'parley:online',
            'parley:{parley:online}:v',
            'parley:sessions:full',
            'parley:{parley:sessions:full}:v',
            'parley:gw:gw1:sessions',
        );
        assert.equal(str(closeStep[0]), 'parley:next');
        assert.equal(await online(), 1, 'still online: the stop came before the online step');
        assert.equal(await r.call('SISMEMBER', 'parley:gw:gw1:sessions', 'bob#3'), 1, 'still in the gateway set, where the reaper finds it');
        assert.equal(await sclose('bob', 'gw1', 3, true), 0, 'the reaper closes it again: not the last close any more');
        assert.equal(await online(), 0, 'offline now');
        assert.deepEqual(await presence(), ['offline'], 'announced once');
        assert.equal(await r.call('SISMEMBER', 'parley:gw:gw1:sessions', 'bob#3'), 0, 'the gateway set cleaned');
    },
);

cluster.test('send to a user gone offline: inbox only; the next session gets it, a second session nothing', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { send, sopen, sclose, published } = await aliceAndBob(t);
    await sclose('bob', 'gw1', 7);
    await sclose('bob', 'gw2', 3);
    await published();
    await send('alice', 'bob', 'while away', 'c6', 'gwA#5', 5);
    const p = await published();
    assert.ok(!p.some(({ env }) => env && env.t === 'u' && env.u === 'bob'), 'no delivery to offline bob');
    let res = await sopen('bob', 'gw3', 1);
    assert.equal(res[2], res[0] - 1, 'bob gets it on open: the offline entries are (from, seq]');
    await send('alice', 'bob', 'while online', 'c6b', 'gwA#5', 5);
    res = await sopen('bob', 'gw3', 2);
    assert.equal(res[2], res[0], 'a second session gets nothing pending (the first had everything)');
});

cluster.test('renew_slot and release_slot: only the owner of the lease', async (t) => {
    const { r, ev } = await fresh(t);
    await r.call('SET', 'parley:slot:3', 'r1', 'PX', 3000);
    assert.equal(await ev('renew_slot', ['parley:slot:3'], ['r2', 9000]), 0, 'renew by non-owner refused');
    assert.equal(await ev('renew_slot', ['parley:slot:3'], ['r1', 9000]), 1, 'renew by owner');
    assert.ok((await r.call('PTTL', 'parley:slot:3')) > 3000, 'renew by owner: the new lease');
    assert.equal(await ev('release_slot', ['parley:slot:3'], ['r2']), 0, 'release by non-owner refused');
    assert.equal(await ev('release_slot', ['parley:slot:3'], ['r1']), 1, 'release by owner');
    assert.equal(await r.call('EXISTS', 'parley:slot:3'), 0, 'release by owner: the key is gone');
});

cluster.test('forget_gateway: removes a dead gateway only once it has no session and no alive key', async (t) => {
    const { r, ev } = await fresh(t);
    // the chain scripts_forget_gateway starts: the alive key, the session set, then parley:gateways
    const forget = () =>
        ev(
            'reap_check',
            ['parley:gw:gwF:alive'],
            ['alive', 0, 'n', 'reap_check', 1, 'parley:gw:gwF:sessions', 'empty', 0, 'n', 'forget_gateway', 1, 'parley:gateways', 'gwF'],
        );
    const member = () => r.call('SISMEMBER', 'parley:gateways', 'gwF');
    await r.call('SADD', 'parley:gateways', 'gwF');
    await r.call('SADD', 'parley:gw:gwF:sessions', 'x#1');
    assert.equal(await forget(), 0, 'forget_gateway: kept while it has sessions');
    assert.equal(await member(), 1, 'forget_gateway: kept while it has sessions (member)');
    await r.call('DEL', 'parley:gw:gwF:sessions');
    await r.call('SET', 'parley:gw:gwF:alive', 1, 'PX', 60000);
    assert.equal(await forget(), 0, 'forget_gateway: kept when its alive key is back');
    assert.equal(await member(), 1, 'forget_gateway: kept when its alive key is back (member)');
    await r.call('DEL', 'parley:gw:gwF:alive');
    assert.equal(await forget(), 1, 'forget_gateway: removed when dead with no session');
    assert.equal(await member(), 0, 'forget_gateway: removed when dead with no session (member)');
});

cluster.test('send creates the epoch of a recipient that never had a session', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { r, register, send } = await aliceAndBob(t);
    await register('dave', 'H', 1);
    await send('alice', 'dave', 'hey', 'c7', 'gwA#5', 5);
    assert.notEqual(await r.call('HGET', U('dave', 'meta'), 'epoch'), null, 'epoch created on first inbox entry');
});

cluster.test('send batch: results in order, one PUBLISH per gateway, each connection answered in order, group fan-out', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { r, sopen, sendBatch, published, lastEntry } = await aliceAndBob(t);
    await sopen('alice', 'gwB', 9);
    await sopen('alice', 'gwA', 6);
    await r.call('HSET', 'parley:{g:#b}:meta', 'open', 1, 'created', 1, 'by', 'alice');
    await r.call('SADD', 'parley:{g:#b}:members', 'alice', 'bob', 'carol');
    await sopen('carol', 'gw1', 11);
    await published();
    const res = await sendBatch([
        ['alice', 'bob', 'b1', 'k1', 'gwA#5', 5],
        ['alice', 'zed', 'z', 'k2', 'gwA#5', 5],
        ['alice', 'bob', 'b1', 'k1', 'gwA#5', 5],
        ['alice', '#b', 'g1', 'k3', 'gwA#5', 5],
        ['bob', 'alice', 'b2', 'k4', 'gw1#7', 7],
        ['carol', '#nope', 'x', 'k5', 'gw1#11', 11],
        ['alice', '#b', '', 'k6', 'gwA#5', 5],
    ]);
    const what = 'batch results in order (dup inside the batch, refusals, ids increasing)';
    assert.equal(res.length, 7, what);
    assert.ok(res[1] === 'no_such_user' && res[5] === 'no_such_user', `${what}: refusals ${JSON.stringify(res)}`);
    assert.deepEqual(res[2], [...res[0], 'dup'], `${what}: dup`);
    assert.ok(res[0][0] < res[3][0] && res[3][0] < res[4][0] && res[4][0] < res[6][0], `${what}: ids ${JSON.stringify(res)}`);
    const raw = await published({ raw: true });
    const chans = raw.map((m) => m.channel);
    assert.equal(new Set(chans).size, chans.length, `one PUBLISH per gateway channel: ${chans}`);
    assert.ok(chans.includes('parley:gw:gwA') && chans.includes('parley:gw:gw1'), `one PUBLISH per gateway channel: gwA and gw1 in ${chans}`);
    const envs = Object.fromEntries(raw.map((m) => [m.channel, envelopes(m.payload)]));
    const to5 = envs['parley:gw:gwA'].filter((e) => e.t === 'c' && e.c === 5).map((e) => e.f);
    assert.deepEqual(
        to5.map((f) => [f.kind, f.cid ?? null, f.code ?? null]),
        [
            ['ack', 'k1', null],
            ['error', 'k2', 'no_such_user'],
            ['ack', 'k1', null],
            ['ack', 'k3', null],
            ['ack', 'k6', null],
        ],
        "alice's connection 5 gets its answers in order",
    );
    assert.equal(to5[0].id, to5[2].id, "alice's connection 5 gets its answers in order: the dup's id");
    const gw1 = envs['parley:gw:gw1'];
    const bobGroup = gw1.filter((e) => e.t === 'm');
    const what1 = "gw1: bob's text once, then both group messages for bob and carol";
    assert.deepEqual(
        gw1.filter((e) => e.t === 'u' && e.u === 'bob').map((e) => e.f.data),
        ['b1'],
        what1,
    );
    assert.deepEqual(
        bobGroup.map((e) => e.f.data),
        ['g1', ''],
        `${what1}: group messages`,
    );
    assert.ok(
        bobGroup.every((e) => e.u.includes('bob') && e.u.includes('carol') && !e.u.includes('alice')),
        `${what1}: users ${JSON.stringify(bobGroup)}`,
    );
    const errs = gw1.filter((e) => e.t === 'c' && e.c === 11).map((e) => e.f);
    assert.ok(errs.length === 1 && errs[0].code === 'no_such_user', 'carol: no such group');
    assert.equal((await lastEntry('carol')).w, '#b', "carol's inbox (a reference to #b's history) and unread for #b");
    assert.equal(await r.call('HGET', U('carol', 'unread'), '#b'), '2', "carol's inbox and unread for #b: unread");
});

cluster.test('send batch: a Redis error fails one message (answered unavailable), not the batch', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { r, register, sendBatch, published } = await aliceAndBob(t);
    await register('dave', 'H', 1);
    await r.call('SET', U('dave', 'inbox'), 'not a list');
    await published();
    const res = await sendBatch([
        ['alice', 'dave', 'd', 'k7', 'gwA#5', 5],
        ['alice', 'bob', 'after', 'k8', 'gwA#5', 5],
    ]);
    assert.ok(
        typeof res[0] === 'string' && res[0].startsWith('failed:') && Array.isArray(res[1]),
        `a Redis error fails one message, not the batch: ${JSON.stringify(res)}`,
    );
    const answers = (await published()).filter(({ env }) => env.t === 'c').map(({ env }) => [env.f.kind, env.f.code ?? null]);
    assert.deepEqual(
        answers,
        [
            ['error', 'unavailable'],
            ['ack', null],
        ],
        'the failed message is answered unavailable, the next one acked',
    );
});

cluster.test('send dedupe window: cids rotate into cids:old, both are checked', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { r, register, send } = await fresh(t);
    await register('erin');
    await register('alice');
    await send('erin', 'alice', 'one', 'e1', 'gwE#1', 1);
    await r.call('EXPIRE', U('erin', 'cids'), 100); // as if created 2 x 86400 - 100 s ago
    await send('erin', 'alice', 'two', 'e2', 'gwE#1', 1);
    const cids = async (key) => (await r.call('HKEYS', key)).filter((f) => Buffer.byteLength(f) <= 64); // without the encoding marker
    assert.deepEqual(await cids(U('erin', 'cids:old')), ['e1'], 'rotation: old entries move to cids:old');
    assert.deepEqual(await cids(U('erin', 'cids')), ['e2'], 'rotation: old entries move to cids:old (new hash)');
    assert.ok((await r.call('TTL', U('erin', 'cids'))) > 86400, 'rotation: old entries move to cids:old (TTL)');
    assert.equal(await r.call('OBJECT', 'ENCODING', U('erin', 'cids')), 'hashtable', 'a cids hash is a hashtable from its first entry (O(1) lookups)');
    const res = await send('erin', 'alice', 'one', 'e1', 'gwE#1', 1);
    assert.ok(Array.isArray(res) && res.at(-1) === 'dup', 'a cid in cids:old is still a duplicate');
});

cluster.test('send to a group of 70: one envelope listing every member and seq to every gateway', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { r, sopen, sendBatch, published, lastEntry } = await fresh(t);
    const big = Array.from({ length: 70 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    await r.call('HSET', 'parley:{g:#big}:meta', 'open', 1, 'created', 1, 'by', 'm00');
    await r.call('SADD', 'parley:{g:#big}:members', ...big);
    await r.call('SADD', 'parley:gateways', 'gwX', 'gwY');
    await sopen('m00', 'gwX', 1);
    await published();
    const res = await sendBatch([['m00', '#big', 'to all', 'big1', 'gwX#1', 1]]);
    const raw = await published({ raw: true });
    const many = Object.fromEntries(raw.map((m) => [m.channel, envelopes(m.payload).filter((e) => e.t === 'm')]));
    const what = '70 members: one envelope with all 70 users and seqs to each gateway';
    assert.ok(Array.isArray(res[0]), `${what}: ${JSON.stringify(res)}`);
    assert.deepEqual(
        Object.keys(many)
            .filter((c) => many[c].length)
            .sort(),
        ['parley:gw:gwX', 'parley:gw:gwY'],
        what,
    );
    for (const c of ['parley:gw:gwX', 'parley:gw:gwY']) {
        assert.equal(many[c].length, 1, `${what}: one on ${c}`);
        assert.deepEqual([...many[c][0].u].sort(), big, `${what}: users on ${c}`);
        assert.ok(many[c][0].s.length === 70 && many[c][0].x === 'gwX#1', `${what}: seqs and x on ${c}`);
    }
    const e = many['parley:gw:gwX'][0];
    const what2 = "each member's inbox entry has the seq of the envelope; unread for all but the sender";
    const last = await Promise.all(e.u.map(lastEntry));
    for (const [i, u] of e.u.entries()) assert.equal(last[i].seq, e.s[i], `${what2}: ${u}`);
    assert.equal(await r.call('HGET', U('m05', 'unread'), '#big'), '1', `${what2}: m05`);
    assert.equal(await r.call('HGET', U('m00', 'unread'), '#big'), null, `${what2}: not the sender`);
});

cluster.test(
    'group: a newcomer (create, add, join) starts with the history read and no unread; a leaver keeps neither',
    { skip: ONE_REDIS_ONLY },
    async (t) => {
        const { r, register, group, send, counters } = await fresh(t);
        for (const u of ['ann', 'ben', 'cat', 'dan']) await register(u);
        assert.deepEqual(await group('create', '#g', 'ann', ['ben'], '1'), ['ok'], 'create');
        assert.deepEqual(await counters('ben', '#g'), [null, null], 'created with an empty history: no position, no unread');
        let last;
        for (let i = 0; i < 5; i++) last = await send('ann', '#g', `m${i}`, `g${i}`, 'gwA#1', 1);
        assert.deepEqual(await counters('ben', '#g'), ['5', null], 'ben counted the five');
        // a stale unread left for a newcomer is dropped
        await r.call('HSET', U('cat', 'unread'), '#g', 7);
        assert.deepEqual(await group('add', '#g', 'ann', ['cat']), ['ok'], 'add');
        assert.deepEqual(await counters('cat', '#g'), [null, String(last[0])], 'added: read up to the newest id, no unread');
        assert.deepEqual(await group('join', '#g', 'dan'), ['ok'], 'join');
        assert.deepEqual(await counters('dan', '#g'), [null, String(last[0])], 'joined: read up to the newest id, no unread');
        const m = await send('ann', '#g', 'after', 'g9', 'gwA#1', 1);
        assert.deepEqual(await counters('dan', '#g'), ['1', String(last[0])], 'a message after the join counts');
        await r.call('DEL', `${U('dan', 'groupop')}:#g`); // one join or leave per window: cleared
        assert.deepEqual(await group('leave', '#g', 'dan'), ['ok'], 'leave');
        assert.deepEqual(await counters('dan', '#g'), [null, null], 'the leaver keeps no position and no unread');
        await r.call('DEL', `${U('dan', 'groupop')}:#g`); // one join or leave per window: cleared
        assert.deepEqual(await group('join', '#g', 'dan'), ['ok'], 'rejoin');
        assert.deepEqual(await counters('dan', '#g'), [null, String(m[0])], 'the rejoiner starts fresh');
    },
);

cluster.test('group: groups created per user: over the cap forbidden, 0 means no limit', async (t) => {
    const s = await fresh(t);
    const { register, group } = s;
    await register('gc');
    for (const g of ['#gc1', '#gc2']) assert.deepEqual(await group('create', g, 'gc', [], '0', 2), ['ok'], `create ${g}`);
    const over = await group('create', '#gc3', 'gc', [], '0', 2);
    assert.deepEqual([over[0], over[1]], ['error', 'forbidden'], `a third with a cap of 2: ${JSON.stringify(over)}`);
    assert.deepEqual(await group('create', '#gc3', 'gc', [], '0', 0), ['ok'], 'a cap of 0: no limit');
});

cluster.test(
    'group: when the last member leaves, the group is deleted (meta, history, search entry) and its name is free',
    { skip: ONE_REDIS_ONLY },
    async (t) => {
        const { r, register, group, send } = await fresh(t);
        for (const u of ['ann', 'ben']) await register(u);
        assert.deepEqual(await group('create', '#gone', 'ann', ['ben'], '1'), ['ok'], 'create an open group');
        for (let i = 0; i < 3; i++) await send('ann', '#gone', `m${i}`, `gone${i}`, 'gwA#1', 1);
        assert.equal(await r.call('ZCARD', 'parley:{c:#gone}:history'), 3, 'three messages in its history');
        assert.deepEqual(await group('leave', '#gone', 'ann'), ['ok'], 'ann leaves');
        assert.equal(await r.call('EXISTS', 'parley:{g:#gone}:meta'), 1, 'one member left: the group stays');
        assert.deepEqual(await group('leave', '#gone', 'ben'), ['ok'], 'ben, the last member, leaves');
        assert.equal(
            await r.call('EXISTS', 'parley:{g:#gone}:meta', 'parley:{g:#gone}:members', 'parley:{c:#gone}:history'),
            0,
            'meta, members and history are gone',
        );
        assert.equal(await r.call('ZSCORE', 'parley:groups', '#gone'), null, 'no longer found by a search');
        assert.deepEqual(await group('join', '#gone', 'ann'), ['error', 'no_such_user', 'no such group: #gone'], 'it cannot be joined');
        assert.deepEqual(await group('create', '#gone', 'ben', [], '0'), ['ok'], 'the name can be created again');
        assert.equal(await r.call('ZCARD', 'parley:{c:#gone}:history'), 0, 'with an empty history');
    },
);

cluster.test('read: the recount decodes a bounded window, exact within it, and past it never raises unread', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { r, register, send, read, counters } = await fresh(t);
    for (const u of ['alice', 'bob']) await register(u);
    const ids = [];
    // 150 from alice, then 30 of bob's own, then 20 more from alice: 170 unread for bob
    for (let i = 0; i < 200; i++) {
        const [from, to] = i >= 150 && i < 180 ? ['bob', 'alice'] : ['alice', 'bob'];
        ids.push((await send(from, to, `m${i}`, `r${i}`, `gw#${from}`, 1))[0]);
    }
    assert.deepEqual(await counters('bob', 'alice'), ['170', null], 'bob: 170 unread');
    // 199 after the position (over the window), 1 before it: the old count less alice's one
    assert.deepEqual(await read('bob', 'alice', ids[0]), [1, ids[0]], 'read the first');
    assert.deepEqual(await counters('bob', 'alice'), ['169', String(ids[0])], 'read the first: 169 left');
    // 50 after (within the window): counted exactly, bob's own excluded
    await read('bob', 'alice', ids[149]);
    assert.deepEqual(await counters('bob', 'alice'), ['20', String(ids[149])], 'read up to the 150th: 20 left');
    // within the window the recount is exact, even above the stored count (a count left by hand
    // below the truth, or messages whose group fan-out has not reached the reader yet)
    await r.call('HSET', U('bob', 'unread'), 'alice', 3);
    await read('bob', 'alice', ids[160]);
    assert.deepEqual(await counters('bob', 'alice'), ['20', String(ids[160])], 'exact within the window: 20');
    await read('bob', 'alice', ids[199] + 1000);
    assert.deepEqual(await counters('bob', 'alice'), [null, String(ids[199])], 'read to the end: no unread');
});

cluster.test('read: far from both ends of the window, the messages past it count as unread', { skip: ONE_REDIS_ONLY }, async (t) => {
    const { register, send, read, counters } = await fresh(t);
    for (const u of ['alice', 'bob']) await register(u);
    const ids = [];
    // 120 from bob (his own), then 130 from alice: bob has 130 unread
    for (let i = 0; i < 250; i++) {
        const [from, to] = i < 120 ? ['bob', 'alice'] : ['alice', 'bob'];
        ids.push((await send(from, to, `m${i}`, `w${i}`, `gw#${from}`, 1))[0]);
    }
    assert.deepEqual(await counters('bob', 'alice'), ['130', null], 'bob: 130 unread');
    // 135 after the position and 115 before it, both over the window: in the window bob's 5
    // and 95 of alice's, the 35 past it taken as unread: 130
    await read('bob', 'alice', ids[114]);
    assert.deepEqual(await counters('bob', 'alice'), ['130', String(ids[114])], 'past the window: counted as unread');
    await read('bob', 'alice', ids[119]);
    assert.deepEqual(await counters('bob', 'alice'), ['130', String(ids[119])], "bob's own read: still 130");
    await read('bob', 'alice', ids[120]);
    assert.deepEqual(await counters('bob', 'alice'), ['129', String(ids[120])], 'one of alice read: 129');
});

// fanout.lua: one step of #name's queued fan-out with a chunk of `chunk` members
function fanoutStep(s, name, chunk) {
    return s.ev(
        'fanout',
        [`parley:{g:${name}}:fanout`, 'parley:fanouts', `parley:{g:${name}}:members`, 'parley:gateways', `parley:{g:${name}}:meta`],
        [
            name,
            'parley:gw:',
            LIMITS.inboxCap,
            LIMITS.inboxBytes,
            LIMITS.ttl,
            chunk,
            U('%s', 'meta'),
            U('%s', 'inbox'),
            U('%s', 'sessions'),
            U('%s', 'unread'),
            U('%s', 'read'),
            U('%s', 'cids'),
            JOB_FMT,
            TODO_FMT,
            U('%s', 'mentions'),
            'parley:{c:%s}:history',
            U('%s', 'recount'),
        ],
    );
}

// the ids of a user's inbox entries, oldest first
async function inboxIds(r, user) {
    return (await r.callBuffers('LRANGE', U(user, 'inbox'), 0, -1)).map((e) => unpack(e).id);
}

// the keys whose value (any type) holds marker, among every key of the Redis
async function keysHolding(r, marker) {
    return r.call(
        'EVAL',
        "local found, cursor = {}, '0' repeat local res = redis.call('SCAN', cursor, 'COUNT', 1000) cursor = res[1] " +
            "for _, k in ipairs(res[2]) do local t, vals = redis.call('TYPE', k).ok, {} " +
            "if t == 'string' then vals = {redis.call('GET', k)} elseif t == 'list' then vals = redis.call('LRANGE', k, 0, -1) " +
            "elseif t == 'hash' then vals = redis.call('HGETALL', k) elseif t == 'set' then vals = redis.call('SMEMBERS', k) " +
            "elseif t == 'zset' then vals = redis.call('ZRANGE', k, 0, -1) end " +
            'for _, v in ipairs(vals) do if string.find(v, ARGV[1], 1, true) then found[#found + 1] = k break end end end ' +
            "until cursor == '0' return found",
        '0',
        marker,
    );
}

cluster.test('mentions: a long run of name characters is looked at once (linear), its trailing punctuation dropped', { skip: ONE_REDIS_ONLY }, async (t) => {
    const s = await fresh(t);
    const { r, register, sendBatch } = s;
    for (const u of ['mm', 'bob']) await register(u);
    // 60,000 dots after "@bob": one run whose tail is walked back over, a mention of bob; and a
    // run of 60,000 dots then a letter: no name. Quadratic matching took Redis 14 s for this.
    const t0 = Date.now();
    let res = await sendBatch([
        ['mm', 'bob', `hi @bob${'.'.repeat(60000)}`, 'm1', 'gwM#1', 1],
        ['mm', 'bob', `@${'.'.repeat(60000)}a`, 'm2', 'gwM#1', 1],
    ]);
    const ms = Date.now() - t0;
    assert.equal(res.length, 2, JSON.stringify(res));
    const stored = (await r.callBuffers('ZRANGE', 'parley:{c:bob|mm}:history', 0, -1)).map((e) => unpack(e));
    assert.deepEqual(
        stored.map((m) => m.mentions ?? null),
        [['bob'], null],
        'the first mentions bob, the second nobody',
    );
    // not a performance figure: a guard against the quadratic match (14 s), 1,000 times the linear cost
    assert.ok(ms < 3000, `two 60 KB texts stored in ${ms} ms`);
    res = await sendBatch([['mm', 'bob', `${'@x '.repeat(100)}@bob`, 'm3', 'gwM#1', 1]]);
    assert.ok(Array.isArray(res[0]), JSON.stringify(res));
    const last = unpack((await r.callBuffers('ZRANGE', 'parley:{c:bob|mm}:history', -1, -1))[0]);
    assert.equal(last.mentions, undefined, 'after 64 @ names, later ones are not looked up');
    res = await sendBatch([['mm', 'bob', `${'@'.repeat(1024)} @bob`, 'm4', 'gwM#1', 1]]);
    assert.ok(Array.isArray(res[0]), JSON.stringify(res));
    const signs = unpack((await r.callBuffers('ZRANGE', 'parley:{c:bob|mm}:history', -1, -1))[0]);
    assert.equal(signs.mentions, undefined, 'past the first 1,024 @ signs nothing is looked at');
    res = await sendBatch([['mm', 'bob', `${'@'.repeat(1022)} @bob`, 'm5', 'gwM#1', 1]]);
    assert.ok(Array.isArray(res[0]), JSON.stringify(res));
    const within = unpack((await r.callBuffers('ZRANGE', 'parley:{c:bob|mm}:history', -1, -1))[0]);
    assert.deepEqual(within.mentions, ['bob'], 'the 1,023rd @ sign still is');
});

cluster.test(
    'changes that change nothing take one message from the budget; an edit that grows a message trims the history to its byte cap',
    { skip: ONE_REDIS_ONLY },
    async (t) => {
        const s = await fresh(t);
        const { r, register, sendBatch } = s;
        for (const u of ['na', 'nb']) await register(u);
        const limits = { ...LIMITS, rates: [1, 5, 0, 1, 0, 1], historyBytes: 600 };
        let res = await sendBatch([['na', 'nb', 'first', 'n0', 'gwN#1', 1]], limits);
        const id = res[0][0];
        const noop = [];
        for (let i = 1; i <= 6; i++) noop.push(['na', 'nb', '👍', `n${i}`, 'gwN#1', 1, 'react-', String(id)]);
        res = await sendBatch(noop, limits);
        assert.deepEqual(
            res.map((x) => (Array.isArray(x) ? 'ack' : x)),
            ['ack', 'ack', 'ack', 'ack', 'rate_limited', 'rate_limited'],
            `a burst of 5 messages, the text took one: ${JSON.stringify(res)}`,
        );
        assert.equal(await r.call('HEXISTS', U('na', 'cids'), 'n5'), 0, 'a refused one is not remembered');
        // history bytes: three texts, then the oldest edited to 500 bytes: over 600, the oldest go
        await r.call('DEL', U('na', 'budget'));
        const free = { ...LIMITS, historyBytes: 600 };
        for (let i = 0; i < 2; i++) await sendBatch([['na', 'nb', `more ${i}`, `h${i}`, 'gwN#1', 1]], free);
        res = await sendBatch([['na', 'nb', 'x'.repeat(500), 'e1', 'gwN#1', 1, 'edit', String(id)]], free);
        assert.ok(Array.isArray(res[0]), JSON.stringify(res));
        const sizes = (await r.callBuffers('ZRANGE', 'parley:{c:na|nb}:history', 0, -1)).map((e) => e.length);
        const total = sizes.reduce((a, b) => a + b, 0);
        assert.ok(total <= 600 && sizes.length < 3, `history within 600 bytes after the edit: ${sizes}`);
        assert.equal(Number(await r.call('GET', 'parley:{c:na|nb}:bytes')), total, 'the byte count is exact');
    },
);

cluster.test('a read while a group fan-out waits counts the message once: a queued text, a queued delete', { skip: ONE_REDIS_ONLY }, async (t) => {
    const s = await fresh(t);
    const { r, register, group, sendBatch } = s;
    const members = Array.from({ length: 5 }, (_, i) => `f${i}`);
    for (const u of members) await register(u);
    assert.deepEqual(await group('create', '#f', 'f0', members.slice(1)), ['ok']);
    const drain = async () => {
        for (;;) if ((await fanoutStep(s, '#f', 2))[0] === 'idle') return;
    };
    let res = await sendBatch([['f0', '#f', 'x0', 'c0', 'gwF#1', 1]]);
    const x0 = res[0][0];
    await drain();
    // a text queued (5 members > chunk 2); f3 reads up to x0 before his step: his recount counts
    // the text (in the history already), so his step must not count it again
    res = await sendBatch([['f1', '#f', '@f3 t1', 'c1', 'gwF#2', 2]], { ...LIMITS, chunk: 2 });
    const t1 = res[0][0];
    assert.equal(res[0][3], 'pending');
    await s.read('f3', '#f', x0);
    await drain();
    assert.deepEqual(
        [await r.call('HGET', U('f3', 'unread'), '#f'), await r.call('HGET', U('f3', 'mentions'), '#f')],
        ['1', '1'],
        'f3: t1 counted once (unread 1, mention 1)',
    );
    // the author deletes t1, queued; f3 reads up to x0 again... his position does not move: f2 then
    await r.call('HSET', U('f2', 'read'), '#f', String(x0 - 1 > 0 ? x0 - 1 : 0));
    res = await sendBatch([['f1', '#f', '', 'c2', 'gwF#2', 2, 'delete', String(t1)]], { ...LIMITS, chunk: 2 });
    assert.equal(res[0][3], 'pending');
    await s.read('f2', '#f', x0);
    await s.read('f3', '#f', x0); // no move: no recount, the step takes it off
    await drain();
    assert.deepEqual(
        [await r.call('HGET', U('f2', 'unread'), '#f'), await r.call('HGET', U('f3', 'unread'), '#f'), await r.call('HGET', U('f3', 'mentions'), '#f')],
        [null, null, null],
        'f2 recounted after the delete: not taken off twice; f3 did not: taken off by the step',
    );
    assert.equal(await r.call('HGET', U('f4', 'unread'), '#f'), '1', 'f4 (no read): x0 left; t1 counted, then taken off');
});

cluster.test(
    'queued changes of a big group: an edit job holds no text; a delete while edit and text jobs wait leaves the text in no key; the steps deliver it deleted',
    { skip: ONE_REDIS_ONLY },
    async (t) => {
        const s = await fresh(t);
        const { r, register, group, sopen, sendBatch, published } = s;
        const members = Array.from({ length: 8 }, (_, i) => `e${i}`);
        for (const u of members) await register(u);
        assert.deepEqual(await group('create', '#e', 'e0', members.slice(1)), ['ok'], 'create #e');
        await r.call('SADD', 'parley:gateways', 'gwE');
        await sopen('e3', 'gwE', 3);
        const small = { ...LIMITS, chunk: 3 };
        // the text, fanned out whole; then an edit (queued: 8 members > chunk 3), a reaction and a
        // second text behind it; then the author deletes it while all three wait
        let res = await sendBatch([['e1', '#e', 'original @e2', 'x1', 'gwE#1', 1]], { ...LIMITS });
        const id = res[0][0];
        for (;;) if ((await fanoutStep(s, '#e', 3))[0] === 'idle') break;
        res = await sendBatch(
            [
                ['e1', '#e', 'SECRET-EDIT', 'x2', 'gwE#1', 1, 'edit', String(id)],
                ['e2', '#e', '👍', 'x3', 'gwE#2', 2, 'react+', String(id)],
                ['e4', '#e', 'later text', 'x4', 'gwE#4', 4],
            ],
            small,
        );
        assert.deepEqual(
            res.map((x) => x[3]),
            ['pending', 'pending', 'pending'],
            `all three queued: ${JSON.stringify(res)}`,
        );
        assert.deepEqual(await keysHolding(r, 'SECRET-EDIT'), ['parley:{c:#e}:history'], 'the edited text is stored once: in the history, not in the edit job');
        res = await sendBatch([['e1', '#e', '', 'x5', 'gwE#1', 1, 'delete', String(id)]], small);
        assert.equal(res[0][3], 'pending', `the delete queues behind them: ${JSON.stringify(res)}`);
        assert.deepEqual(await keysHolding(r, 'SECRET-EDIT'), [], 'after the delete the text is in no key');
        assert.deepEqual(await keysHolding(r, 'original @e2'), [], 'nor its first version');
        await published();
        const steps = [];
        for (let i = 0; i < 30; i++) {
            const step = await fanoutStep(s, '#e', 3);
            steps.push(step);
            if (step[0] === 'idle') break;
            assert.ok(step[2] <= 4, `a step writes at most chunk + 1 members: ${JSON.stringify(step)}`);
        }
        assert.equal(steps.at(-1)[0], 'idle', JSON.stringify(steps));
        // e3's gateway got, in order: the edit as the delete it became, the reaction, the later text, the delete
        const toE3 = (await published())
            .filter(({ channel, env }) => channel === 'parley:gw:gwE' && env.t === 'm' && env.u.includes('e3'))
            .map(({ env }) => env.f);
        assert.deepEqual(
            toE3.map((f) => [f.kind, f.data ?? null]),
            [
                ['delete', null],
                ['react', null],
                ['text', 'later text'],
                ['delete', null],
            ],
            JSON.stringify(toE3),
        );
        const acks = (await r.call('HGET', U('e1', 'cids'), 'x2')) !== null;
        assert.ok(acks, 'the edit cid recorded once its fan-out ended');
        // e2 was mentioned and had not read: the delete took the text off both counts
        assert.deepEqual(
            [await r.call('HGET', U('e2', 'unread'), '#e'), await r.call('HGET', U('e2', 'mentions'), '#e')],
            ['1', null],
            "e2's counts: the later text only",
        );
        // every member's inbox: text, edit, react, later text, delete references; a sync replays the
        // text deleted, the edit as a delete
        const e5 = (await r.callBuffers('LRANGE', U('e5', 'inbox'), 0, -1)).map((e) => unpack(e));
        assert.deepEqual(
            e5.map((e) => e.k ?? 't'),
            ['t', 'e', 'r', 't', 'd'],
            JSON.stringify(e5),
        );
        const meta = await r.call('HGET', U('e5', 'meta'), 'epoch');
        const page = await s.sync('e5', 0, meta);
        const frames = page.slice(2).map((b) => unpack(b));
        assert.deepEqual(
            frames.map((f) => [f.kind, f.data ?? null, f.seq]),
            [
                ['text', '', 1],
                ['delete', null, 2],
                ['react', null, 3],
                ['text', 'later text', 4],
                ['delete', null, 5],
            ],
            JSON.stringify(frames),
        );
    },
);

cluster.test(
    'send to a group over the chunk: stored and queued, no ack; fanout steps of at most chunk + 1 writes in id order, then the ack',
    { skip: ONE_REDIS_ONLY },
    async (t) => {
        const s = await fresh(t);
        const { r, register, group, sopen, sendBatch, published } = s;
        const members = Array.from({ length: 12 }, (_, i) => `q${String(i).padStart(2, '0')}`);
        for (const u of [...members, 'late']) await register(u);
        assert.deepEqual(await group('create', '#q', 'q00', members.slice(1)), ['ok'], 'create #q');
        await r.call('SADD', 'parley:gateways', 'gwX');
        await sopen('q00', 'gwX', 1);
        await sopen('q05', 'gwX', 2);
        await published();
        const small = { ...LIMITS, chunk: 5 };
        // a message to 12 members with a chunk of 5: queued; the next one of the group queues behind it
        let res = await sendBatch(
            [
                ['q00', '#q', 'big one', 'k1', 'gwX#1', 1],
                ['q01', '#q', 'after it', 'k2', 'gwX#7', 7],
            ],
            small,
        );
        const [id1, id2] = [res[0][0], res[1][0]];
        assert.deepEqual(
            res[0].slice(1).filter((x, i) => i !== 1),
            [0, 'pending', '#q'],
            `first: pending ${JSON.stringify(res)}`,
        );
        assert.deepEqual(res[1].slice(3), ['pending', '#q'], `second queued behind it: ${JSON.stringify(res)}`);
        assert.ok(id2 > id1, 'ids in send order');
        assert.deepEqual(await published(), [], 'nothing published before the fan-out: no ack, no delivery');
        assert.deepEqual(await r.call('SMEMBERS', 'parley:fanouts'), ['#q'], 'the group is in parley:fanouts');
        assert.deepEqual(await r.call('LRANGE', 'parley:{g:#q}:fanout', 0, -1), [String(id1), String(id2)], 'the queue');
        assert.equal(await r.call('ZCARD', 'parley:{c:#q}:history'), 2, 'both in the history at once');
        // a retry of k1 while pending, from another connection: no second message, the ack moves there
        res = await sendBatch([['q00', '#q', 'big one', 'k1', 'gwX#9', 9]], small);
        assert.deepEqual([res[0][0], res[0][3]], [id1, 'pending'], `retry while pending: ${JSON.stringify(res)}`);
        assert.equal(await r.call('ZCARD', 'parley:{c:#q}:history'), 2, 'the retry stored nothing');
        // membership changes after the send: a leaver gets nothing more, a newcomer nothing older
        await group('leave', '#q', 'q11');
        await group('add', '#q', 'q00', ['late']);
        await published();

        const steps = [];
        for (let i = 0; i < 20; i++) {
            const step = await fanoutStep(s, '#q', 5);
            steps.push(step);
            if (step[0] === 'idle') break;
            assert.ok(step[2] <= 6, `a step writes at most chunk + 1 members: ${JSON.stringify(step)}`);
        }
        const kinds = steps.map((x) => `${x[0]}${x[1] ? ` ${x[1]}` : ''}`);
        // each job: a snapshot of the 11 others (the leaver among them, skipped at his turn) in
        // steps of 5, the sender's copy in the last one
        assert.deepEqual(kinds, [`more ${id1}`, `more ${id1}`, `done ${id1}`, `more ${id2}`, `more ${id2}`, `done ${id2}`, 'idle'], JSON.stringify(steps));
        assert.equal(
            steps.reduce((n, x) => n + (x[2] || 0), 0),
            11 + 11,
            'every member written once per message (job 1: 10 + the sender; job 2: 10 others + its sender)',
        );
        for (const u of members.slice(0, 11)) assert.deepEqual(await inboxIds(r, u), [id1, id2], `${u}: both, in id order`);
        assert.deepEqual(await inboxIds(r, 'q11'), [], 'the leaver got neither');
        assert.deepEqual(await inboxIds(r, 'late'), [], 'the newcomer got neither (sent before he came)');
        assert.equal(await r.call('HGET', U('q05', 'unread'), '#q'), '2', 'unread counted per message');
        const p = await published();
        const acks = p.filter(({ env }) => env.t === 'c');
        assert.equal(acks.length, 2, `one ack per message: ${JSON.stringify(acks)}`);
        const senderSeq = (await r.call('HGET', U('q00', 'meta'), 'seq')) - 1; // q00's copy of id1 (id2 came after)
        assert.deepEqual(
            [acks[0].env.c, acks[0].env.f.kind, acks[0].env.f.id, acks[0].env.f.cid, acks[0].env.s],
            [9, 'ack', id1, 'k1', senderSeq],
            "k1's ack to the retry's connection, with the sender's seq",
        );
        assert.deepEqual([acks[1].env.c, acks[1].env.f.id], [7, id2], "k2's ack after k1's");
        const deliveries = p.filter(({ env }) => env.t === 'm');
        // x: the session the ack goes to (k1's retry, k2's sender), which counts its own copy as seen
        assert.ok(
            deliveries.every(({ env }) => env.u.length <= 6 && env.x === (env.f.id === id1 ? 'gwX#9' : 'gwX#7')),
            `at most one step of members per envelope, x the ack's session: ${JSON.stringify(deliveries.map(({ env }) => [env.f.id, env.u, env.x]))}`,
        );
        const q05 = deliveries.filter(({ env }) => env.u.includes('q05')).map(({ env }) => env.f.id);
        assert.deepEqual(q05, [id1, id2], 'a live member is delivered each message once, in id order');
        assert.deepEqual(await r.call('SMEMBERS', 'parley:fanouts'), [], 'parley:fanouts empty again');
        assert.equal(await r.call('EXISTS', 'parley:{g:#q}:fanout', `parley:{g:#q}:job:${id1}`, `parley:{g:#q}:todo:${id1}`), 0, 'no job keys left');
        // the cid's record is final: a retry now is a dup with the same ack
        res = await sendBatch([['q00', '#q', 'big one', 'k1', 'gwX#1', 1]], small);
        assert.deepEqual(res[0], [id1, senderSeq, acks[0].env.f.sent, 'dup'], 'a retry after the ack: dup');
        // nothing queued now: a small message is inline again
        res = await sendBatch([['q00', '#q', 'small', 'k3', 'gwX#1', 1]], { ...LIMITS, chunk: 50 });
        assert.equal(res[0].length, 3, `inline once nothing is queued: ${JSON.stringify(res)}`);
    },
);

cluster.test(
    'a fan-out queued for a group deleted and re-created under its name writes nobody of the new group; the sender is acked',
    { skip: ONE_REDIS_ONLY },
    async (t) => {
        const s = await fresh(t);
        const { r, register, group, sopen, sendBatch, published } = s;
        const members = ['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7'];
        for (const u of members) await register(u);
        assert.deepEqual(await group('create', '#d', 'd0', members.slice(1)), ['ok'], 'create #d');
        const gen1 = await r.call('HGET', 'parley:{g:#d}:meta', 'gen');
        assert.ok(gen1, 'the meta carries its incarnation');
        await r.call('SADD', 'parley:gateways', 'gwX');
        await sopen('d0', 'gwX', 1);
        await published();
        const small = { ...LIMITS, chunk: 3 };
        const res = await sendBatch([['d0', '#d', 'to the old #d', 'o1', 'gwX#1', 1]], small);
        const id = res[0][0];
        assert.equal(res[0][3], 'pending', `queued: ${JSON.stringify(res)}`);
        // everyone leaves (the group and its history go), then d5 re-creates #d with d1..d3
        for (const u of members) await group('leave', '#d', u);
        assert.equal(
            await r.call('EXISTS', 'parley:{g:#d}:meta', 'parley:{c:#d}:history', 'parley:{c:#d}:bytes'),
            0,
            'meta, history and its byte count deleted',
        );
        assert.deepEqual(await group('create', '#d', 'd5', ['d1', 'd2', 'd3']), ['ok'], 're-create #d');
        assert.notEqual(await r.call('HGET', 'parley:{g:#d}:meta', 'gen'), gen1, 'a new incarnation');
        await published();
        const steps = [];
        for (let i = 0; i < 10; i++) {
            const step = await fanoutStep(s, '#d', 3);
            steps.push(step);
            if (step[0] !== 'more') break;
        }
        assert.deepEqual(
            steps.map((x) => [x[0], x[1], x[2]]),
            [['done', id, 1]],
            `one step: only the sender's own copy: ${JSON.stringify(steps)}`,
        );
        for (const u of ['d1', 'd2', 'd3', 'd5']) assert.deepEqual(await inboxIds(r, u), [], `${u} (in the new #d) got nothing of the old one`);
        assert.equal(await r.call('HGET', U('d1', 'unread'), '#d'), null, 'no unread counted in the new #d');
        const acks = (await published()).filter(({ env }) => env.t === 'c');
        assert.deepEqual(
            acks.map(({ env }) => [env.c, env.f.kind, env.f.id, env.f.cid]),
            [[1, 'ack', id, 'o1']],
            'the sender is acked (its message was stored)',
        );
    },
);

cluster.test(
    'send budgets: messages, inbox writes and bytes per user; over one: rate_limited with the cid, nothing stored',
    { skip: ONE_REDIS_ONLY },
    async (t) => {
        const s = await fresh(t);
        const { r, register, sendBatch, published } = s;
        for (const u of ['ann', 'bob']) await register(u);
        const limited = (res) => res.filter((x) => x === 'rate_limited').length;
        // messages: burst 3
        let res = await sendBatch(
            Array.from({ length: 5 }, (_, i) => ['ann', 'bob', 'x', `m${i}`, 'gwA#1', 1]),
            { ...LIMITS, rates: [1, 3, 0, 1, 0, 1] },
        );
        assert.equal(limited(res), 2, `3 of 5 within a burst of 3: ${JSON.stringify(res)}`);
        const errors = (await published()).filter(({ env }) => env.t === 'c' && env.f.kind === 'error');
        assert.deepEqual(
            errors.map(({ env }) => [env.f.code, env.f.cid]),
            [
                ['rate_limited', 'm3'],
                ['rate_limited', 'm4'],
            ],
            'the sender gets rate_limited with each cid',
        );
        assert.equal(await r.call('GET', 'parley:ids'), '3', 'no id taken by a refused message');
        assert.equal(await r.call('ZCARD', 'parley:{c:ann|bob}:history'), 3, 'refused messages are not stored');
        const ttl = await r.call('PTTL', U('ann', 'budget'));
        assert.ok(ttl > 0 && ttl <= 4000, `the budget key expires once full again: ${ttl}`);
        // a retry of a refused cid is judged again (another user's budget is untouched)
        res = await sendBatch([['bob', 'ann', 'x', 'm3', 'gwB#1', 1]], { ...LIMITS, rates: [1, 3, 0, 1, 0, 1] });
        assert.equal(res[0].length, 3, 'another user is not limited');
        // inbox writes: a 1:1 costs 2, burst 5: two pass
        await r.call('DEL', U('ann', 'budget'));
        res = await sendBatch(
            Array.from({ length: 3 }, (_, i) => ['ann', 'bob', 'x', `f${i}`, 'gwA#1', 1]),
            { ...LIMITS, rates: [0, 1, 1, 5, 0, 1] },
        );
        assert.equal(limited(res), 1, `inbox writes: ${JSON.stringify(res)}`);
        // bytes: data x copies, burst 100: 40 bytes to bob cost 80
        await r.call('DEL', U('ann', 'budget'));
        const rates = [0, 1, 0, 1, 1, 100];
        res = await sendBatch(
            [
                ['ann', 'bob', 'y'.repeat(40), 'b1', 'gwA#1', 1],
                ['ann', 'bob', 'y'.repeat(40), 'b2', 'gwA#1', 1],
                ['ann', 'ann', 'y'.repeat(15), 'b3', 'gwA#1', 1],
            ],
            { ...LIMITS, rates },
        );
        assert.deepEqual(
            res.map((x) => (Array.isArray(x) ? 'ok' : x)),
            ['ok', 'rate_limited', 'ok'],
            `bytes: 80 of 100, then 80 more refused, then 15 to oneself (one copy) fits: ${JSON.stringify(res)}`,
        );
        // a message costing more than the burst could never pass: too_large, with its cid
        await r.call('DEL', U('ann', 'budget'));
        await published();
        res = await sendBatch([['ann', 'bob', 'z'.repeat(60), 'b4', 'gwA#1', 1]], { ...LIMITS, rates });
        assert.deepEqual(res, ['too_large'], 'over the burst by itself');
        const tooLarge = (await published()).filter(({ env }) => env.t === 'c' && env.f.kind === 'error');
        assert.deepEqual(
            tooLarge.map(({ env }) => [env.f.code, env.f.cid]),
            [['too_large', 'b4']],
            'the sender is told it can never pass (not rate_limited: a retry cannot help)',
        );
        assert.equal(await r.call('EXISTS', U('ann', 'budget')), 0, 'nothing taken from the budget');
    },
);

cluster.test('byte caps: an inbox and a history keep their newest entries within the bytes cap, counted incrementally', { skip: ONE_REDIS_ONLY }, async (t) => {
    const s = await fresh(t);
    const { r, register, sendBatch } = s;
    for (const u of ['ann', 'bob']) await register(u);
    // inbox entries are references (~16 bytes each: lib/message.lua), history entries the texts
    const caps = { ...LIMITS, inboxBytes: 100, historyBytes: 500 };
    const sizes = async (key, list) => (list ? await r.callBuffers('LRANGE', key, 0, -1) : await r.callBuffers('ZRANGE', key, 0, -1)).map((e) => e.length);
    const sum = (a) => a.reduce((x, y) => x + y, 0);
    for (let i = 0; i < 12; i++) await sendBatch([['ann', 'bob', `${i}`.padEnd(100, '.'), `c${i}`, 'gwA#1', 1]], caps);
    const inbox = await sizes(U('bob', 'inbox'), true);
    assert.ok(sum(inbox) <= 100 && sum(inbox) + inbox[0] > 100 - inbox[0] && inbox.length < 12, `inbox within 100 bytes: ${inbox}`);
    assert.equal(Number(await r.call('HGET', U('bob', 'meta'), 'bytes')), sum(inbox), 'the inbox byte count is exact');
    assert.equal(unpack((await r.callBuffers('LRANGE', U('bob', 'inbox'), -1, -1))[0]).seq, 12, 'the newest entry kept');
    const hist = await sizes('parley:{c:ann|bob}:history', false);
    assert.ok(sum(hist) <= 500 && hist.length >= 3, `history within 500 bytes: ${hist}`);
    assert.equal(Number(await r.call('GET', 'parley:{c:ann|bob}:bytes')), sum(hist), 'the history byte count is exact');
    // one entry over the cap by itself is kept (never the newest goes), alone
    await sendBatch([['ann', 'bob', 'w'.repeat(900), 'big', 'gwA#1', 1]], caps);
    assert.equal(await r.call('ZCARD', 'parley:{c:ann|bob}:history'), 1, 'a message over the history cap is kept alone');
    assert.equal(Number(await r.call('GET', 'parley:{c:ann|bob}:bytes')), sum(await sizes('parley:{c:ann|bob}:history', false)), 'count follows');
    assert.equal(Number(await r.call('HGET', U('bob', 'meta'), 'bytes')), sum(await sizes(U('bob', 'inbox'), true)), 'the inbox count follows');
});

cluster.test(
    'login_create / login_revoke / login_list and session_open with a login: records, cap, revocation entries and announcements, disable, password change',
    async (t) => {
        const { r, sha, ev, register } = await fresh(t);
        const rsub = await Subscriber.open(cluster.redisPort, 'parley:sessions:revoked');
        t.after(() => rsub.close());
        const revoked = async () => (await rsub.drain(r)).map((m) => str(m.payload));
        const L = (u) => U(u, 'logins');
        const now = 1_000_000_000_000; // ms
        const nowS = now / 1000;
        const sid = (c) => c.repeat(32);
        // the whole reply: {1, revoked sid, exp, ...} when made, else a status
        const createFull = (user, s, { at = now, exp = nowS + 3600, agent = 'ua', cap = 3, verified = '', newHash = '', rate = 0, windowMs = 0 } = {}) =>
            ev(
                'login_create',
                [U(user, 'account'), L(user), U(user, 'login-times')],
                [user, s, at, exp, agent, cap, 'parley:sessions:revoked', verified, newHash, rate, windowMs, 'parley:revoked'],
            );
        const create = async (...a) => {
            const x = await createFull(...a);
            return Array.isArray(x) ? x[0] : x;
        };
        const revoke = (user, what, s = '', exp = '', at = now) =>
            ev('login_revoke', [L(user), U(user, 'account')], [user, 'parley:sessions:revoked', at, what, s, exp, 'parley:revoked']);
        const list = (user, at = now) => ev('login_list', [L(user)], [at]);

        assert.equal(await create('alice', sid('a')), 0, 'no account: nothing made');
        await register('alice', 'H1');
        assert.equal(await create('alice', sid('a'), { at: now, agent: 'phone' }), 1);
        assert.equal(await create('alice', sid('b'), { at: now + 1 }), 1);
        assert.equal(await create('alice', sid('x'), { at: now + 2, exp: nowS - 1 }), 1, 'an already expired one (deleted by the next write)');
        assert.deepEqual(
            await list('alice'),
            [sid('a'), now, now, 'phone', nowS + 3600, sid('b'), now + 1, now + 1, 'ua', nowS + 3600],
            'oldest first, the expired one gone',
        );
        assert.equal(await r.call('HEXISTS', L('alice'), sid('x')), 0, 'login_list deleted the expired record');
        assert.equal(await create('alice', sid('c'), { at: now + 3 }), 1);
        assert.deepEqual(await revoked(), [], 'nothing revoked within the cap');
        assert.deepEqual(
            await createFull('alice', sid('d'), { at: now + 4 }),
            [1, sid('a'), nowS + 3600],
            'a fourth past the cap of 3: the revoked one in the reply',
        );
        assert.deepEqual(await revoked(), [`alice ${sid('a')} ${nowS + 3600}`], 'the oldest revoked and announced');
        assert.equal(await r.call('ZSCORE', 'parley:revoked', `alice ${sid('a')}`), String(nowS + 3600));
        assert.deepEqual(
            (await list('alice')).filter((_, i) => i % 5 === 0),
            [sid('b'), sid('c'), sid('d')],
        );

        // session_open: a live login moves its last seen; a gone one is refused with -1, nothing changed
        const open = (s, at) => sessionOpen(r, sha, 'alice', 'gw1', 1, { login: s, now: at });
        const opened = await open(sid('b'), now + 50);
        assert.ok(Array.isArray(opened) && opened.length === 3, `session_open of a live login: ${opened}`);
        assert.equal(JSON.parse(await r.call('HGET', L('alice'), sid('b'))).l, now + 50, 'last seen moved');
        assert.equal(await open(sid('a'), now + 60), -1, 'a revoked login is refused');
        assert.equal(await open(sid('c'), (nowS + 3600) * 1000), -1, 'an expired login is refused');
        assert.equal(await r.call('SCARD', U('alice', 'sessions')), 1, 'a refused open joins no set');

        // login_touch: the live ones move, gone ones are left alone
        assert.equal(await ev('login_touch', [L('alice')], [now + 70, sid('b'), sid('a')]), 1);
        assert.equal(JSON.parse(await r.call('HGET', L('alice'), sid('b'))).l, now + 70);
        assert.equal(await r.call('HEXISTS', L('alice'), sid('a')), 0, 'a revoked one is not made again');

        // one: found (1), unknown (0; entered anyway when the token expiry is given), all
        assert.deepEqual(await revoke('alice', 'one', sid('b')), [1, sid('b'), nowS + 3600]);
        assert.deepEqual(await revoke('alice', 'one', sid('b')), [0], 'twice: nothing');
        assert.deepEqual(
            await revoke('alice', 'one', sid('e'), String(nowS + 10)),
            [0, sid('e'), nowS + 10],
            'a logout of a session never made still ends its token',
        );
        assert.deepEqual(await revoked(), [`alice ${sid('b')} ${nowS + 3600}`, `alice ${sid('e')} ${nowS + 10}`]);
        assert.deepEqual(await revoke('alice', 'one', sid('f'), String(nowS + 10), (nowS + 20) * 1000), [0], 'an expired token needs no entry');
        assert.equal(await r.call('ZSCORE', 'parley:revoked', `alice ${sid('e')}`), null, 'entries past their expiry removed by the next revocation');

        // a password change: only against the verified hash; sets it and revokes every other login
        assert.equal(await create('alice', sid('g'), { verified: 'not-H1', newHash: 'H2' }), -2, 'the hash changed meanwhile');
        assert.equal(await r.call('HGET', U('alice', 'account'), 'pw'), 'H1');
        assert.equal(await create('alice', sid('g'), { verified: 'H1', newHash: 'H2' }), 1);
        assert.equal(await r.call('HGET', U('alice', 'account'), 'pw'), 'H2');
        assert.deepEqual(
            (await list('alice')).filter((_, i) => i % 5 === 0),
            [sid('g')],
            'only the new login left',
        );
        assert.deepEqual((await revoked()).sort(), [`alice ${sid('c')} ${nowS + 3600}`, `alice ${sid('d')} ${nowS + 3600}`]);

        // disable: every login revoked, no new one; enable
        assert.equal(await create('alice', sid('h')), 1);
        const dis = await revoke('alice', 'disable');
        assert.equal(dis[0], 2, `disable revoked both: ${dis}`);
        assert.equal(await r.call('HGET', U('alice', 'account'), 'disabled'), '1');
        assert.equal(await create('alice', sid('i')), -1, 'a disabled account gets no login');
        assert.deepEqual(await revoke('alice', 'enable'), [1]);
        assert.equal(await create('alice', sid('i')), 1, 'enabled again');
        assert.deepEqual(await revoke('nobody', 'disable'), [-1], 'no such account');
        assert.deepEqual((await revoke('alice', 'all'))[0], 1);

        // --user-login-rate: at most rate made per sliding window; over it {-3, ms to wait}, nothing
        // changed; rate 0 (the CLI): no limit and not counted
        await register('rl', 'H1');
        const w = 10_000;
        assert.equal(await create('rl', sid('1'), { at: now, rate: 2, windowMs: w }), 1);
        assert.equal(await create('rl', sid('2'), { at: now + 4000, rate: 2, windowMs: w }), 1);
        assert.deepEqual(await createFull('rl', sid('3'), { at: now + 5000, rate: 2, windowMs: w }), [-3, 5000], 'over the rate: wait for the oldest to leave');
        assert.equal(await r.call('HEXISTS', L('rl'), sid('3')), 0, 'refused: nothing made');
        assert.equal(await create('rl', sid('4'), { at: now + 5000 }), 1, 'rate 0: made');
        assert.equal(await r.call('ZCARD', U('rl', 'login-times')), 2, 'and not counted');
        assert.equal(await create('rl', sid('5'), { at: now + w, rate: 2, windowMs: w }), 1, 'the oldest left the window');
        assert.deepEqual(await createFull('rl', sid('6'), { at: now + w + 1, rate: 2, windowMs: w }), [-3, 3999]);
        const ttl = Number(await r.call('PTTL', U('rl', 'login-times')));
        assert.ok(ttl > 0 && ttl <= w, `expires within a window: ${ttl}`);
    },
);
cluster.test('login_create steps: a chain stopped after revoked_add leaves the evicted session revoked and no new login; a retry completes it', async (t) => {
    const { r, sha, register } = await fresh(t);
    const rsub = await Subscriber.open(cluster.redisPort, 'parley:sessions:revoked');
    t.after(() => rsub.close());
    const revoked = async () => (await rsub.drain(r)).map((m) => str(m.payload));
    const L = U('kim', 'logins');
    const now = 1_000_000_000_000;
    const exp = now / 1000 + 3600;
    const sid = (c) => c.repeat(32);
    const args = (s, at) => ['kim', s, at, exp, 'ua', 2, 'parley:sessions:revoked', '', '', 0, 0, 'parley:revoked'];
    const keys = [U('kim', 'account'), L, U('kim', 'login-times')];
    await register('kim');
    for (const [c, at] of [
        ['a', now],
        ['b', now + 1],
    ])
        assert.equal((await callScript(r, sha, 'login_create', keys, args(sid(c), at)))[0], 1);
    // the third, past the cap of 2: the user step names revoked_add, which names login_store
    const first = await r.call('EVALSHA', sha.login_create, keys.length, ...keys, ...args(sid('c'), now + 2));
    assert.equal(first[0], 'parley:next');
    assert.equal(first[1], 'revoked_add', 'the revocation is entered before the records change');
    const nk = Number(first[2]);
    const second = await r.call('EVALSHA', sha.revoked_add, nk, ...first.slice(3, 3 + nk), ...first.slice(3 + nk));
    assert.equal(second[1], 'login_store');
    // stopped here: the evicted one is refused everywhere, the new one does not exist
    assert.equal(await r.call('ZSCORE', 'parley:revoked', `kim ${sid('a')}`), String(exp), 'the evicted session is revoked');
    assert.deepEqual(await revoked(), [`kim ${sid('a')} ${exp}`], 'and announced');
    assert.equal(await r.call('HEXISTS', L, sid('c')), 0, 'no new login');
    // a retry (a new attempt) evicts the same one again and completes
    const res = await callScript(r, sha, 'login_create', keys, args(sid('d'), now + 3));
    assert.deepEqual(res, [1, sid('a'), exp], 'the retry revokes the same session');
    assert.deepEqual((await r.call('HKEYS', L)).sort(), [sid('b'), sid('d')], 'the evicted record gone, the new login stored');
});

// throttle.lua: fixed-window counters of failed attempts (gateway/throttle.h)
cluster.test('throttle: take counts every key up to its budget, then answers the longest wait and counts nothing; give refunds; counters expire', async (t) => {
    const s = await fresh(t);
    const keys = ['parley:throttle:addr:10.0.0.1', U('alice', 'fails'), U('alice', 'fails:10.0.0.1')];
    // the chain scripts_throttle starts: a step on the address's counter, then one on the
    // account's (which gives the address's back when it refuses)
    const call = (mode, window, budgets) => {
        if (budgets.length === 1) return s.ev('throttle', [keys[0]], [mode, window, budgets[0], 0, 'i', 0]);
        const account = ['n', 'throttle', budgets.length - 1, ...keys.slice(1, budgets.length), mode, window, ...budgets.slice(1), 1, keys[0], 'i', 0];
        return s.ev('throttle', [keys[0]], [mode, window, budgets[0], 0, ...account]);
    };
    const take = (window = 60000, budgets = [5, 4, 2]) => call('take', window, budgets);
    const give = (budgets = [5, 4, 2]) => call('give', 60000, budgets);
    const counts = async () => Promise.all(keys.map(async (k) => str(await s.r.call('GET', k))));
    assert.equal(await take(), 0);
    assert.equal(await take(), 0);
    assert.deepEqual(await counts(), ['2', '2', '2']);
    for (const k of keys) {
        const ttl = await s.r.call('PTTL', k);
        assert.ok(ttl > 0 && ttl <= 60000, `${k} expires within the window: ${ttl}`);
    }
    const wait = await take();
    assert.ok(wait > 0 && wait <= 60000, `at the budget of KEYS 3: wait ${wait} ms`);
    assert.deepEqual(await counts(), ['2', '2', '2'], 'a refused attempt counts nothing');
    assert.equal(await give(), 0);
    assert.deepEqual(await counts(), ['1', '1', '1'], 'a success gives its count back');
    assert.equal(await take(), 0, 'room again');
    assert.equal(await give(), 0);
    assert.equal(await give(), 0);
    assert.deepEqual(await counts(), [null, null, null], 'deleted at 0');
    assert.equal(await give(), 0, 'a give with nothing counted changes nothing');
    assert.deepEqual(await counts(), [null, null, null]);
    // only the keys passed are counted (a register: the address alone)
    assert.equal(await take(60000, [1]), 0);
    assert.deepEqual(await counts(), ['1', null, null]);
    assert.ok((await take(60000, [1])) > 0, 'the address budget alone');
    // a short window: the counter goes, and the attempt passes again
    await s.r.call('DEL', keys[0]);
    assert.equal(await take(200, [1]), 0);
    assert.ok((await take(200, [1])) > 0);
    await waitFor(async () => (await take(200, [1])) === 0, { timeout: 3000, what: 'the counter expired' });
});

cluster.test(
    'block: both hidden sets, 1:1 text and typing refused both ways, group create/add naming the blocker refused, envelopes; unblock; the cap',
    { skip: ONE_REDIS_ONLY },
    async (t) => {
        const s = await aliceAndBob(t);
        const { r, block, send, typing, group, contactsFull, published } = s;
        assert.deepEqual(await block('alice', 'zed', true), ['error', 'no_such_user', 'no such user: zed'], 'block an unknown user');
        assert.deepEqual(await block('alice', 'bob', true), ['ok'], 'alice blocks bob');
        assert.deepEqual(await r.call('SMEMBERS', U('alice', 'blocks')), ['bob']);
        assert.deepEqual(
            [await r.call('SMEMBERS', U('alice', 'hidden')), await r.call('SMEMBERS', U('bob', 'hidden'))],
            [['bob'], ['alice']],
            'hidden both ways',
        );
        let p = await published();
        const hides = p.filter(({ env }) => env.t === 'h').map(({ channel, env }) => `${channel} ${env.u} ${env.p} ${env.o}`);
        assert.deepEqual(
            hides.sort(),
            ['parley:gw:gw1 bob alice true', 'parley:gw:gw2 bob alice true', 'parley:gw:gwA alice bob true'],
            'an h envelope to every gateway of both',
        );
        const frames = p.filter(({ env }) => env.t === 'u');
        assert.deepEqual(
            frames.map(({ channel, env }) => [channel, env.u, env.f]),
            [['parley:gw:gwA', 'alice', { kind: 'block', user: 'bob', on: true }]],
            "the block frame to alice's gateways only",
        );
        assert.equal(await send('bob', 'alice', 'hi', 'b1', 'gw1#7', 7), 'forbidden', 'bob -> alice refused');
        p = await published();
        assert.deepEqual(
            p.map(({ env }) => [env.t, env.c, env.f.kind, env.f.code, env.f.cid]),
            [['c', 7, 'error', 'forbidden', 'b1']],
            'forbidden with the cid to the sender only',
        );
        assert.equal(await send('alice', 'bob', 'hi', 'a1', 'gwA#5', 5), 'forbidden', 'the blocker cannot write either');
        assert.equal(await r.call('EXISTS', 'parley:{c:alice|bob}:history'), 0, 'nothing stored');
        assert.equal(await typing('bob', 'alice'), -2, 'typing bob -> alice refused');
        assert.equal(await typing('alice', 'bob'), -2, 'typing alice -> bob refused');
        assert.equal(await typing('carol', 'alice'), 1, 'others still can');
        assert.deepEqual((await group('create', '#g1', 'bob', ['carol', 'alice'])).slice(0, 2), ['error', 'forbidden'], 'bob creates a group naming alice');
        assert.equal(await r.call('EXISTS', 'parley:{g:#g1}:meta'), 0, 'the whole create refused');
        assert.deepEqual(await group('create', '#g2', 'bob', ['carol'], '1'), ['ok']);
        assert.deepEqual((await group('add', '#g2', 'bob', ['alice'])).slice(0, 2), ['error', 'forbidden'], 'bob adds alice');
        assert.deepEqual(await group('add', '#g2', 'carol', ['alice']), ['ok'], 'carol (open group) adds alice: she does not block carol');
        assert.deepEqual(await group('create', '#g3', 'alice', ['bob']), ['ok'], 'the blocker may add the blocked');
        let res = await contactsFull('alice', 200);
        assert.deepEqual(res[2].map(str), ['bob'], "alice's first page carries blocked");
        const online = (rows, name) => rows[rows.findIndex((x, i) => i >= 3 && (i - 3) % 7 === 0 && str(x) === name) + 1];
        assert.equal(online(res, 'bob'), -1, 'bob hidden from alice (online -1) though online');
        res = await contactsFull('bob', 200);
        assert.deepEqual(res[2], [], 'bob blocks nobody');
        assert.equal(online(res, 'alice'), -1, 'alice hidden from bob');
        assert.equal(online(res, 'carol'), 0, 'carol is offline');
        // bob blocks alice too; alice's unblock keeps the pair hidden
        await published();
        assert.deepEqual(await block('bob', 'alice', true), ['ok']);
        assert.deepEqual(
            (await published()).filter(({ env }) => env.t === 'h'),
            [],
            'already hidden: no h envelope',
        );
        assert.deepEqual(await block('alice', 'bob', false), ['ok']);
        assert.deepEqual(
            [await r.call('SMEMBERS', U('alice', 'hidden')), await r.call('SMEMBERS', U('bob', 'hidden'))],
            [['bob'], ['alice']],
            'bob still blocks alice',
        );
        assert.equal(await send('alice', 'bob', 'hi', 'a2', 'gwA#5', 5), 'forbidden', 'still refused');
        assert.deepEqual(await block('bob', 'alice', false), ['ok']);
        assert.deepEqual([await r.call('EXISTS', U('alice', 'hidden')), await r.call('EXISTS', U('bob', 'hidden'))], [0, 0], 'both unblocked: nothing hidden');
        p = await published();
        assert.deepEqual(
            p
                .filter(({ env }) => env.t === 'h')
                .map(({ env }) => `${env.u} ${env.o}`)
                .sort(),
            ['alice false', 'bob false', 'bob false'],
            'shown again: h envelopes with o false',
        );
        assert.ok(Array.isArray(await send('alice', 'bob', 'hi', 'a3', 'gwA#5', 5)), 'writes again');
        assert.deepEqual(await block('alice', 'zed', false), ['ok'], 'unblocking anyone is fine');
        // the cap
        assert.deepEqual(await block('carol', 'alice', true, 1), ['ok']);
        assert.deepEqual((await block('carol', 'bob', true, 1)).slice(0, 2), ['error', 'forbidden'], 'over the cap');
        assert.deepEqual(await block('carol', 'alice', true, 1), ['ok'], 'a block already there is no new one');
    },
);

cluster.test('group roles: a member removed while a fan-out is queued gets nothing of it; an owner from before roles', { skip: ONE_REDIS_ONLY }, async (t) => {
    const s = await fresh(t);
    const { r, register, group, sendBatch, published } = s;
    const members = Array.from({ length: 8 }, (_, i) => `r${i}`);
    for (const u of members) await register(u);
    assert.deepEqual(await group('create', '#r', 'r0', members.slice(1)), ['ok']);
    assert.equal(await r.call('HGET', 'parley:{g:#r}:meta', 'owner'), 'r0');
    await published();
    const small = { ...LIMITS, chunk: 3 };
    const res = await sendBatch([['r1', '#r', 'queued', 'k1', 'gwX#1', 1]], small);
    const id = res[0][0];
    assert.equal(res[0][3], 'pending', JSON.stringify(res));
    let step = await fanoutStep(s, '#r', 3);
    assert.equal(step[0], 'more', JSON.stringify(step));
    const written = new Set();
    for (const u of members) if ((await inboxIds(r, u)).includes(id)) written.add(u);
    const later = members.filter((u) => u !== 'r1' && u !== 'r0' && !written.has(u));
    assert.ok(later.length >= 2, `members still to write: ${later}`);
    assert.deepEqual(await group('remove', '#r', 'r0', [later[0]]), ['ok'], `r0 removes ${later[0]}`);
    for (let i = 0; i < 10 && step[0] !== 'done'; i++) step = await fanoutStep(s, '#r', 3);
    assert.equal(step[0], 'done');
    assert.deepEqual(await inboxIds(r, later[0]), [], 'the removed member got nothing');
    assert.deepEqual(await inboxIds(r, later[1]), [id], 'the others got it');
    assert.equal(await r.call('SISMEMBER', U(later[0], 'groups'), '#r'), 0, 'the group left his list');
    assert.equal(await r.call('HEXISTS', U(later[0], 'unread'), '#r'), 0, 'and his counters');
    // a group from before roles: no owner, no join order
    for (const u of ['r1', 'r2', 'r3']) await r.call('SADD', 'parley:{g:#old}:members', u);
    await r.call('HSET', 'parley:{g:#old}:meta', 'open', '0', 'by', 'r9', 'created', 1);
    assert.deepEqual((await group('add', '#old', 'r2', ['r4'])).slice(0, 2), ['error', 'forbidden'], 'r2 is no owner');
    assert.equal(await r.call('HGET', 'parley:{g:#old}:meta', 'owner'), 'r1', 'creator gone: the first by name becomes owner');
    assert.deepEqual(await r.call('ZRANGE', 'parley:{g:#old}:joined', 0, -1), ['r1', 'r2', 'r3'], 'join order filled in');
    assert.deepEqual(await group('add', '#old', 'r1', ['r4']), ['ok']);
    assert.equal(Number(await r.call('ZSCORE', 'parley:{g:#old}:joined', 'r4')) > 0, true, 'a later joiner after them');
});

cluster.test('group roles at 5,000 members: promote, remove and the heir without reading the members; the pre-roles step reads them once', async (t) => {
    const s = await fresh(t);
    const { r, group } = s;
    const names = Array.from({ length: 5000 }, (_, i) => `z${String(i).padStart(4, '0')}`);
    for (let i = 0; i < names.length; i += 500) {
        await r.call('ZADD', 'parley:users', ...names.slice(i, i + 500).flatMap((u) => [0, u]));
        await r.call('SADD', 'parley:{g:#big}:members', ...names.slice(i, i + 500));
    }
    // a group from before roles, of 5,000 members
    await r.call('HSET', 'parley:{g:#big}:meta', 'open', '0', 'by', 'z0007', 'created', 1);
    const timed = async (what, ...args) => {
        const t0 = process.hrtime.bigint();
        const res = await group(...args, '0', 100, 0);
        t.diagnostic(`${what}: ${Number(process.hrtime.bigint() - t0) / 1e6} ms`);
        return res;
    };
    assert.deepEqual(await timed('first op of a pre-roles group of 5,000 (its join order filled in)', 'promote', '#big', 'z0007', ['z0100']), ['ok']);
    assert.equal(await r.call('ZCARD', 'parley:{g:#big}:joined'), 5000);
    assert.deepEqual(await timed('promote', 'promote', '#big', 'z0007', ['z0200']), ['ok']);
    assert.deepEqual((await timed('refused remove', 'remove', '#big', 'z0300', ['z0400'])).slice(0, 2), ['error', 'forbidden']);
    assert.deepEqual(await timed('remove by an admin', 'remove', '#big', 'z0100', ['z0400']), ['ok']);
    assert.deepEqual(await timed('the owner leaves', 'leave', '#big', 'z0007'), ['ok']);
    assert.equal(await r.call('HGET', 'parley:{g:#big}:meta', 'owner'), 'z0100', 'the first admin inherits');
    assert.deepEqual(await r.call('ZRANGE', 'parley:{g:#big}:admins', 0, -1), ['z0200']);
});

// With the "#!lua" line every script has (docs/internals.md "Scripts in steps"), Redis refuses a
// script as a whole at maxmemory unless its flags allow it: a session's close (its steps say
// allow-oom: a close frees memory) must still go through, or the sets keep a dead session.
cluster.test('at maxmemory a session still closes (allow-oom steps): out of its sets, offline; a new write is refused', async (t) => {
    const { r, register, sopen, sclose } = await fresh(t);
    await register('oom');
    await sopen('oom', 'gw1', 4);
    assert.equal(await r.call('SISMEMBER', 'parley:online', 'oom'), 1, 'online');
    await r.call('CONFIG', 'SET', 'maxmemory', 1);
    try {
        await assert.rejects(r.call('SET', 'x', '1'), /OOM/, 'a write is refused');
        await sclose('oom', 'gw1', 4);
        assert.equal(await r.call('SCARD', U('oom', 'sessions')), 0, "out of the user's sessions");
        assert.equal(await r.call('SCARD', 'parley:gw:gw1:sessions'), 0, "out of the gateway's");
        assert.equal(await r.call('SISMEMBER', 'parley:online', 'oom'), 0, 'offline');
    } finally {
        await r.call('CONFIG', 'SET', 'maxmemory', 0);
    }
});
