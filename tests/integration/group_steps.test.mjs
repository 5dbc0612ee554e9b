// The chains of steps of group.lua, read.lua, typing.lua and block.lua (issue 15: every step
// on one Redis Cluster hash slot; docs/internals.md "Scripts in steps"), called by hand as
// common/scripts_run.c runs them (lib/steps.mjs: every hop's KEYS checked to share one slot)
// against a real redis-server with no router. The state is made with plain one-key commands,
// so the file runs as well against a one-node cluster (PARLEY_TEST_REDIS=cluster: a script
// touching a key of another slot is an error there). Each test starts from FLUSHALL.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { Cluster } from './lib/cluster.mjs';
import { Conn, Subscriber, envelopes, loadScripts, userKey as U } from './lib/resp.mjs';
import { STOPPED, callSteps } from './lib/steps.mjs';

// Redis only (no router: it would claim slots, and it cannot run on a cluster node yet).
const cluster = new Cluster('group_steps', { gateways: 0 });
before(async () => {
    fs.rmSync(cluster.dir, { recursive: true, force: true });
    fs.mkdirSync(path.join(cluster.dir, 'tests'), { recursive: true });
    cluster.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-it-group_steps-'));
    await cluster.startRedis();
});
after(() => cluster.stop());

const G = (name, what) => `parley:{g:${name}}:${what}`;
const H = (conv) => `parley:{c:${conv}}:history`;
const sorted = (a) => [...a].sort();

// A fresh Redis: users (each with one session on gateway gw<i % 3>), the scripts loaded, the
// calls bound to one connection, and a subscriber to every gateway channel.
async function fresh(t, users) {
    const r = await Conn.open(cluster.redisPort);
    await r.call('FLUSHALL');
    const sha = await loadScripts(cluster);
    const sub = await Subscriber.open(cluster.redisPort, 'parley:gw:*');
    t.after(() => {
        r.close();
        sub.close();
    });
    for (const [i, u] of users.entries()) {
        await r.call('ZADD', 'parley:users', 0, u);
        await r.call('HSET', U(u, 'account'), 'hash', 'H');
        await r.call('SADD', U(u, 'sessions'), `gw${i % 3}#${i}`);
    }
    await r.call('SADD', 'parley:gateways', 'gw0', 'gw1', 'gw2');
    const steps = (name, keys, args, opts) => callSteps(r, sha, name, keys, args, opts);
    const s = {
        r,
        // everything published since the last call, as [{channel, env}]
        async published() {
            return (await sub.drain(r)).flatMap((m) => envelopes(m.payload).map((env) => ({ channel: m.channel, env })));
        },
        group: (op, name, by, members = [], { open = '0', window = 0, opts } = {}) =>
            steps(
                'group',
                [G(name, 'meta'), G(name, 'members'), G(name, 'joined'), G(name, 'admins')],
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
                    100,
                    U('%s', 'meta'),
                    window,
                    U('%s', 'blocks'),
                    U('%s', 'mentions'),
                    U('%s', 'recount'),
                    U('%s', 'groupop'),
                    'parley:users',
                    H(name),
                    `parley:{c:${name}}:bytes`,
                    'parley:groups',
                    'parley:gateways',
                    U('%s', 'inbox'),
                    ...members,
                ],
                opts,
            ),
        read(reader, w, upto, opts) {
            const g = w.startsWith('#');
            const conv = g ? w : sorted([reader, w]).join('|');
            return steps(
                'read',
                g ? [G(w, 'members'), G(w, 'meta')] : [U(w, 'account'), U(w, 'account')],
                [
                    reader,
                    w,
                    g ? '1' : '0',
                    upto,
                    'parley:gw:',
                    U('%s', 'sessions'),
                    `gwR#${reader}`,
                    H(conv),
                    U(reader, 'read'),
                    U(reader, 'unread'),
                    U(reader, 'mentions'),
                    U(reader, 'recount'),
                    'parley:gateways',
                    U(reader, 'meta'),
                    U(reader, 'inbox'),
                ],
                opts,
            );
        },
        typing(from, to, window = 1000) {
            const g = to.startsWith('#');
            return steps('typing', g ? [G(to, 'members'), G(to, 'meta'), G(to, 'meta')] : [U(to, 'account'), U(to, 'sessions'), U(to, 'hidden')], [
                'parley:gw:',
                to,
                Buffer.from(encode({ kind: 'typing', from, to })),
                g ? '1' : '0',
                from,
                U('%s', 'sessions'),
                window,
                window,
                U(from, `typing:${to}`),
                'parley:gateways',
            ]);
        },
        block: (by, user, on, opts) =>
            steps(
                'block',
                [U(user, 'account')],
                [
                    by,
                    user,
                    on ? '1' : '0',
                    1000,
                    'parley:gw:',
                    U(by, 'blocks'),
                    U(by, 'hidden'),
                    U(by, 'sessions'),
                    U(user, 'hidden'),
                    U(user, 'blocks'),
                    U(user, 'sessions'),
                ],
                opts,
            ),
        // a stored text of the group or pair conv
        store: (conv, id, from, extra = {}) => r.callBuffers('ZADD', H(conv), id, Buffer.from(encode({ kind: 'text', id, from, data: 'x', ...extra }))),
        groupsOf: async (u) => sorted(await r.call('SMEMBERS', U(u, 'groups'))),
    };
    return s;
}

cluster.test('group steps: create, add, promote, remove, join, leave; members keys follow; the last leave deletes the group', async (t) => {
    const s = await fresh(t, ['a', 'b', 'c', 'd', 'e', 'f']);
    const { r, group, groupsOf } = s;
    const trace = [];
    assert.deepEqual(await group('create', '#g', 'a', ['b', 'c'], { open: '1', opts: { trace } }), ['ok']);
    assert.deepEqual(trace.slice(0, 3), ['group', 'group_by', 'group_users'], 'throttle, then the users');
    assert.ok(trace.includes('group_apply') && trace.includes('group_done'), trace.join(' '));
    assert.deepEqual(sorted(await r.call('SMEMBERS', G('#g', 'members'))), ['a', 'b', 'c']);
    for (const u of ['a', 'b', 'c']) assert.deepEqual(await groupsOf(u), ['#g'], `${u}'s groups`);
    assert.equal(await r.call('HGET', U('a', 'meta'), 'groups'), '1', "the creator's count");
    assert.equal(await r.call('ZSCORE', 'parley:groups', '#g'), '0', 'open: searchable');
    assert.equal(await r.call('HEXISTS', G('#g', 'meta'), 'pend'), 0, 'nothing left to do');
    const frames = await s.published();
    assert.ok(frames.length > 0 && frames.every((p) => p.env.f.kind === 'group' && p.env.f.op === 'create'), 'the create frame');
    assert.deepEqual(sorted(frames.flatMap((p) => p.env.u)), ['a', 'b', 'c'], 'to each member once');

    await s.store('#g', 5, 'b', { mentions: ['d'] });
    await r.call('HSET', U('d', 'unread'), '#g', 3);
    assert.deepEqual(await group('add', '#g', 'a', ['d']), ['ok']);
    assert.equal(await r.call('HGET', U('d', 'read'), '#g'), '5', 'a newcomer starts at the newest id');
    assert.equal(await r.call('HGET', U('d', 'unread'), '#g'), null, 'and no unread');
    assert.equal((await group('add', '#g', 'a', ['d']))[0], 'same');
    // a text sent between the history's newest id (group_run) and f's own step, counted for f
    // by its send (f was a member already): kept
    const onStep = async (name) => {
        if (name !== 'group_member' || (await r.call('EXISTS', H('#g'))) === 0) return;
        if ((await r.call('ZCARD', H('#g'))) > 1) return;
        await s.store('#g', 6, 'b');
        await r.callBuffers('RPUSH', U('f', 'inbox'), Buffer.from(encode({ seq: 1, id: 6, w: '#g' })));
        await r.call('HINCRBY', U('f', 'unread'), '#g', 1);
    };
    assert.deepEqual(await group('add', '#g', 'a', ['f'], { opts: { onStep } }), ['ok']);
    assert.deepEqual(
        [await r.call('HGET', U('f', 'read'), '#g'), await r.call('HGET', U('f', 'unread'), '#g')],
        ['5', '1'],
        'the text after his start is unread',
    );
    assert.deepEqual(await group('add', '#g', 'a', ['zz']), ['error', 'no_such_user', 'no such user: zz']);
    await r.call('SADD', U('e', 'blocks'), 'a');
    assert.deepEqual((await group('add', '#g', 'a', ['e'])).slice(0, 2), ['error', 'forbidden'], 'e blocks a');
    assert.deepEqual(await group('promote', '#g', 'a', ['b']), ['ok']);
    assert.deepEqual(await r.call('ZRANGE', G('#g', 'admins'), 0, -1), ['b']);
    assert.deepEqual(await group('remove', '#g', 'b', ['c']), ['ok']);
    assert.deepEqual(await groupsOf('c'), [], 'removed: out of his groups');
    assert.deepEqual(await group('join', '#g', 'c'), ['ok']);
    assert.deepEqual(await group('leave', '#g', 'a'), ['ok']);
    assert.equal(await r.call('HGET', G('#g', 'meta'), 'owner'), 'b', 'the admin inherits');
    await s.published();
    for (const u of ['b', 'c', 'f']) assert.deepEqual(await group('leave', '#g', u), ['ok']);
    assert.deepEqual(await group('leave', '#g', 'd'), ['ok']);
    for (const k of [G('#g', 'meta'), G('#g', 'members'), G('#g', 'joined'), G('#g', 'admins'), H('#g')])
        assert.equal(await r.call('EXISTS', k), 0, `${k} deleted`);
    assert.equal(await r.call('ZSCORE', 'parley:groups', '#g'), null, 'not searchable');
    assert.equal(await r.call('HGET', U('a', 'meta'), 'groups'), '0', 'the creator may create one more');
    const last = (await s.published()).filter((p) => p.env.f.by === 'd');
    assert.deepEqual(
        last.map((p) => [p.env.f.op, p.env.f.members, p.env.u]),
        [['leave', [], ['d']]],
        'the last leaver gets the frame of the empty group',
    );
});

cluster.test('group steps: a change stopped after the group keys is seen by readers at once, and the next op on the group (a retry) finishes it', async (t) => {
    const s = await fresh(t, ['a', 'b', 'c', 'd']);
    const { r, group, groupsOf } = s;
    assert.deepEqual(await group('create', '#g', 'a', ['b', 'c']), ['ok']);
    await s.store('#g', 9, 'b');
    await r.call('HSET', U('c', 'unread'), '#g', 1);
    await s.published();

    // add d: the group keys changed, d's own not yet (his steps never ran)
    assert.equal(await group('add', '#g', 'a', ['d'], { opts: { stopAt: 'group_member' } }), STOPPED);
    assert.equal(await r.call('SISMEMBER', G('#g', 'members'), 'd'), 1, 'd is a member (send, history and typing see him)');
    assert.deepEqual(await groupsOf('d'), [], 'but his hello does not list the group yet');
    assert.equal(await r.call('HEXISTS', G('#g', 'meta'), 'pend'), 1, 'what is left is recorded');
    assert.deepEqual(await s.published(), [], 'no frame yet');
    // the retry: finishes the add (frame included), then answers as for a change already made
    const retry = await group('add', '#g', 'a', ['d']);
    assert.equal(retry[0], 'same', JSON.stringify(retry));
    assert.deepEqual(await groupsOf('d'), ['#g']);
    assert.equal(await r.call('HGET', U('d', 'read'), '#g'), '9');
    assert.equal(await r.call('HEXISTS', G('#g', 'meta'), 'pend'), 0);
    const frames = await s.published();
    assert.ok(
        frames.some((p) => p.env.f.op === 'add' && p.env.f.members.includes('d')),
        'the add frame went out when it was finished',
    );

    // remove c, stopped: out of the members at once, his keys not yet; an op on others (promote
    // b) goes on beside it; one naming c (an add by b, now admin) finishes it first, then runs
    assert.equal(await group('remove', '#g', 'a', ['c'], { opts: { stopAt: 'group_member' } }), STOPPED);
    assert.equal(await r.call('SISMEMBER', G('#g', 'members'), 'c'), 0);
    assert.deepEqual(await groupsOf('c'), ['#g'], 'still listed');
    assert.deepEqual(await group('promote', '#g', 'a', ['b']), ['ok']);
    assert.deepEqual(await r.call('ZRANGE', G('#g', 'admins'), 0, -1), ['b']);
    assert.deepEqual(await groupsOf('c'), ['#g'], 'not an op on c');
    await r.call('HSET', U('c', 'read'), '#g', 1);
    const trace = [];
    assert.deepEqual(await group('add', '#g', 'b', ['c'], { opts: { trace } }), ['ok']);
    assert.equal(trace.filter((x) => x === 'group_done').length, 2, `the remove finished, then the add: ${trace.join(' ')}`);
    assert.deepEqual(await groupsOf('c'), ['#g']);
    assert.equal(await r.call('HGET', U('c', 'read'), '#g'), '9', 'c starts afresh');
    assert.equal(await r.call('HGET', U('c', 'unread'), '#g'), null);
    assert.equal(await r.call('HEXISTS', G('#g', 'meta'), 'pend'), 0);

    // the last leave stopped before the history's step: the name is not free until finished
    for (const u of ['b', 'c', 'd']) assert.deepEqual(await group('leave', '#g', u), ['ok']);
    assert.equal(await group('leave', '#g', 'a', [], { opts: { stopAt: 'group_run' } }), STOPPED);
    assert.equal(await r.call('EXISTS', H('#g')), 1, 'history still there');
    assert.deepEqual(await group('create', '#g', 'c', ['d']), ['ok'], 'a create finishes the deletion, then creates');
    assert.equal(await r.call('EXISTS', H('#g')), 0, 'the old history is gone');
    assert.equal(await r.call('HGET', G('#g', 'meta'), 'by'), 'c');
    assert.deepEqual(sorted(await r.call('SMEMBERS', G('#g', 'members'))), ['c', 'd']);
    assert.deepEqual(await groupsOf('a'), []);
    assert.equal(await r.call('HGET', U('a', 'meta'), 'groups'), '0');
    assert.equal(await r.call('HGET', U('c', 'meta'), 'groups'), '1');
    assert.equal(await r.call('HEXISTS', G('#g', 'meta'), 'pend'), 0);
});

cluster.test('group steps: twelve joins at once all land, each member keys written, nothing left pending', async (t) => {
    const users = ['o', ...Array.from({ length: 12 }, (_, i) => `j${i}`)];
    const s = await fresh(t, users);
    const { r, group, groupsOf } = s;
    assert.deepEqual(await group('create', '#open', 'o', [], { open: '1' }), ['ok']);
    const replies = await Promise.all(users.slice(1).map((u) => group('join', '#open', u)));
    assert.deepEqual(
        replies,
        users.slice(1).map(() => ['ok']),
    );
    assert.equal(await r.call('SCARD', G('#open', 'members')), 13);
    for (const u of users) assert.deepEqual(await groupsOf(u), ['#open'], u);
    assert.equal(await r.call('HEXISTS', G('#open', 'meta'), 'pend'), 0);
    assert.equal(await r.call('ZCARD', G('#open', 'joined')), 13, 'each has a join number');
});

cluster.test(
    'group steps: under 64 recipients one envelope per gateway holding one; from 64 one envelope to every gateway; the throttle on by slot',
    async (t) => {
        const users = ['a', ...Array.from({ length: 70 }, (_, i) => `m${i}`)];
        const s = await fresh(t, users);
        const { r, group } = s;
        await r.call('SADD', 'parley:gateways', 'gw-idle');
        assert.deepEqual(await group('create', '#small', 'a', users.slice(1, 5)), ['ok']);
        let p = await s.published();
        assert.deepEqual(sorted(p.map((x) => x.channel)), ['parley:gw:gw0', 'parley:gw:gw1', 'parley:gw:gw2'], 'the gateways of the five');
        assert.deepEqual(await group('create', '#big', 'a', users.slice(1), { window: 60000 }), ['ok']);
        p = await s.published();
        assert.deepEqual(sorted(p.map((x) => x.channel)), ['parley:gw:gw-idle', 'parley:gw:gw0', 'parley:gw:gw1', 'parley:gw:gw2'], 'every gateway');
        assert.ok(
            p.every((x) => x.env.u.length === 71),
            'each listing all 71',
        );
        const again = await group('remove', '#big', 'a', ['m0'], { window: 60000 });
        assert.equal(again[1], 'rate_limited', JSON.stringify(again));
        assert.equal(await r.call('SISMEMBER', G('#big', 'members'), 'm0'), 1, 'nothing changed');
        assert.ok((await r.call('PTTL', U('a', 'groupop'))) > 0);
    },
);

cluster.test('read steps: recount on the history slot, writes on the reader slot; a stop before them changes nothing; receipts', async (t) => {
    const s = await fresh(t, ['a', 'b', 'c']);
    const { r, group, read } = s;
    assert.deepEqual(await group('create', '#g', 'a', ['b', 'c']), ['ok']);
    for (let id = 1; id <= 4; id++) await s.store('#g', id, id === 2 ? 'a' : 'b', id === 3 ? { mentions: ['a'] } : {});
    await r.call('HSET', U('a', 'unread'), '#g', 3);
    await r.call('HSET', U('a', 'mentions'), '#g', 1);
    await s.published();
    assert.equal(await read('a', '#g', 1, { stopAt: 'read_set' }), STOPPED);
    assert.equal(await r.call('HGET', U('a', 'read'), '#g'), null, 'nothing written (none: the history was empty when a joined)');
    assert.deepEqual(await read('a', '#g', 1), [1, 1]);
    assert.deepEqual([await r.call('HGET', U('a', 'unread'), '#g'), await r.call('HGET', U('a', 'mentions'), '#g')], ['2', '1'], 'recounted: 3 and 4');
    assert.equal(await r.call('HGET', U('a', 'recount'), '#g'), '4 0', 'the mark: newest id, deletes');
    const p = await s.published();
    assert.ok(p.length > 0 && p.every((x) => x.env.f.kind === 'read' && x.env.x === 'gwR#a'), 'receipts, skipping the reading session');
    assert.deepEqual(sorted(p.flatMap((x) => x.env.u)), ['a', 'b', 'c']);
    assert.deepEqual(await read('a', '#g', 99), [1, 4], 'clamped to the newest');
    assert.deepEqual(await read('a', '#g', 3), [0, 4], 'no move back');
    assert.equal(await r.call('HGET', U('a', 'unread'), '#g'), null);
    assert.deepEqual(await read('c', '#nope', 1), 'no_such_user');
    // a message counted between the recount and the writes (as a send does: history, then the
    // inbox entry, the seq and the count in one call): the read counts again
    await r.call('HSET', U('a', 'read'), '#g', 1);
    await r.call('HSET', U('a', 'unread'), '#g', 2);
    let sent = false;
    const trace = [];
    const onStep = async (name) => {
        if (name !== 'read_set' || sent) return;
        sent = true;
        await s.store('#g', 5, 'c');
        await r.callBuffers('RPUSH', U('a', 'inbox'), Buffer.from(encode({ seq: 1, id: 5, w: '#g' })));
        await r.call('HINCRBY', U('a', 'meta'), 'seq', 1);
        await r.call('HINCRBY', U('a', 'unread'), '#g', 1);
    };
    assert.deepEqual(await read('a', '#g', 3, { trace, onStep }), [1, 3]);
    assert.equal(trace.filter((x) => x === 'read_pos').length, 2, `counted again: ${trace.join(' ')}`);
    assert.equal(await r.call('HGET', U('a', 'unread'), '#g'), '2', '4 and the newcomer 5');
    await s.store('a|b', 7, 'b');
    assert.deepEqual(await read('a', 'b', 7), [1, 7], '1:1');
    assert.equal(await r.call('HGET', U('a', 'recount'), 'a|b'), null, 'no mark for 1:1');
});

cluster.test('typing steps: access and blocks first, the throttle on the sender slot, then the delivery', async (t) => {
    const s = await fresh(t, ['a', 'b', 'c']);
    const { r, group, typing, block } = s;
    assert.deepEqual(await group('create', '#g', 'a', ['b', 'c']), ['ok']);
    await s.published();
    assert.equal(await typing('a', '#g'), 1);
    let p = await s.published();
    assert.deepEqual(sorted(p.flatMap((x) => x.env.u)), ['b', 'c'], 'the other members');
    assert.equal(await typing('a', '#g'), 1, 'throttled: answered as sent');
    assert.deepEqual(await s.published(), [], 'but nothing sent');
    assert.equal(await typing('a', 'b', 0), 1);
    p = await s.published();
    assert.deepEqual(
        p.map((x) => [x.channel, x.env.t, x.env.u]),
        [['parley:gw:gw1', 'u', 'b']],
    );
    assert.equal(await typing('a', 'nobody'), 0);
    assert.equal(await typing('x', '#g'), -1);
    assert.deepEqual(await block('b', 'a', true), ['ok']);
    assert.equal(await typing('a', 'b', 0), -2);
    assert.equal(await r.call('EXISTS', U('a', 'typing:nobody')), 0, 'a refused notice takes no throttle');
});

cluster.test('block steps: by side first, then user side, then the answer; a stop between is finished by the retry', async (t) => {
    const s = await fresh(t, ['a', 'b']);
    const { r, block } = s;
    const sets = async () => [
        sorted(await r.call('SMEMBERS', U('a', 'blocks'))),
        sorted(await r.call('SMEMBERS', U('a', 'hidden'))),
        sorted(await r.call('SMEMBERS', U('b', 'hidden'))),
    ];
    assert.equal(await block('a', 'b', true, { stopAt: 'block_peer' }), STOPPED);
    assert.deepEqual(await sets(), [['b'], ['b'], []], "a's side only");
    let p = await s.published();
    assert.deepEqual(
        p.map((x) => [x.channel, x.env.t, x.env.u, x.env.p]),
        [['parley:gw:gw0', 'h', 'a', 'b']],
        "a's gateways hide b; no answer yet",
    );
    assert.deepEqual(await block('a', 'b', true), ['ok']);
    assert.deepEqual(await sets(), [['b'], ['b'], ['a']]);
    p = await s.published();
    assert.deepEqual(
        p.map((x) => [x.channel, x.env.t, x.env.u]),
        [
            ['parley:gw:gw1', 'h', 'b'],
            ['parley:gw:gw0', 'u', 'a'],
        ],
        "b's side announced once, then the answer",
    );
    // b blocks a too: an unblock by a keeps both hidden
    assert.deepEqual(await block('b', 'a', true), ['ok']);
    assert.deepEqual(await block('a', 'b', false), ['ok']);
    assert.deepEqual(await sets(), [[], ['b'], ['a']]);
    assert.deepEqual(await block('b', 'a', false), ['ok']);
    assert.deepEqual(await sets(), [[], [], []]);
    assert.deepEqual(await block('a', 'nobody', true), ['error', 'no_such_user', 'no such user: nobody']);
    assert.deepEqual(await r.call('SMEMBERS', U('a', 'blocks')), [], 'nothing written');
});

cluster.test('group steps: bounded work: create with 1,000 names, add 1,000 to 4,000, leave a 5,000 group (each step measured, SLOWLOG)', async (t) => {
    const users = Array.from({ length: 5001 }, (_, i) => `u${i}`);
    const r0 = await Conn.open(cluster.redisPort);
    await r0.call('FLUSHALL');
    r0.close();
    const s = await fresh(t, users.slice(0, 3));
    const { r, group } = s;
    await Promise.all(users.map((u) => r.call('ZADD', 'parley:users', 0, u)));
    const sha = await loadScripts(cluster);
    const name = Object.fromEntries(Object.entries(sha).map(([k, v]) => [v, k]));
    const measured = async (what, fn) => {
        await r.call('CONFIG', 'SET', 'slowlog-log-slower-than', 0);
        await r.call('CONFIG', 'SET', 'slowlog-max-len', 1000000); // the commands scripts run are logged too
        await r.call('SLOWLOG', 'RESET');
        const res = await fn();
        const log = await r.call('SLOWLOG', 'GET', -1);
        await r.call('CONFIG', 'SET', 'slowlog-log-slower-than', 10000);
        const per = {};
        for (const e of log) {
            const n = name[String(e[3][1])];
            if (!n) continue;
            per[n] = per[n] || { calls: 0, max: 0 };
            per[n].calls++;
            per[n].max = Math.max(per[n].max, e[2]);
        }
        const worst = Object.entries(per).sort((a, b) => b[1].max - a[1].max);
        t.diagnostic(`${what}: ${worst.map(([n, v]) => `${n} ${v.calls}x max ${v.max} us`).join(', ')}`);
        return [res, per];
    };
    let [res, per] = await measured('create, 1,000 named', () => group('create', '#big', 'u0', users.slice(1, 1001)));
    assert.deepEqual(res, ['ok']);
    assert.equal(per.group_member.calls, 1001, 'one member step per member');
    assert.equal(per.group_blocks.calls, 1000, 'one block check per name');
    for (let i = 1001; i < 4000; i += 1000) assert.deepEqual(await group('add', '#big', 'u0', users.slice(i, i + 1000)), ['ok']);
    [res, per] = await measured('add 1,000 to 4,000', () => group('add', '#big', 'u0', users.slice(4000, 5000)));
    assert.deepEqual(res, ['ok']);
    assert.equal(await r.call('SCARD', G('#big', 'members')), 5000);
    assert.equal(per.notify_all.calls, 1, 'the frame: one envelope to every gateway');
    const listed = await Promise.all(users.slice(4000, 5000).map((u) => r.call('SISMEMBER', U(u, 'groups'), '#big')));
    assert.equal(listed.filter((x) => x === 1).length, 1000, 'every newcomer lists the group');
    [res, per] = await measured('leave a 5,000 group', () => group('leave', '#big', 'u17'));
    assert.deepEqual(res, ['ok']);
    assert.equal(per.group_member.calls, 1, "the leaver's keys only");
});
