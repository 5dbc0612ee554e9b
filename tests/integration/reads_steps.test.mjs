// The reads a client makes, as chains of steps each inside one hash slot (issue 15,
// docs/internals.md "Scripts in steps"): sync.lua (an inbox page resolved against the histories
// of other conversations, and the memberships of the groups it names), history.lua (the access
// check on the other user's or the group's tag, then the page) and contacts.lua (the list of
// hello and its `users` pages: the user's sets, the groups' members, every entry's counters,
// presence, preview and roles). Each test builds its state by hand with plain one-key commands
// (no other script: this file runs before the send, session and group scripts are split) and
// calls the first step as the gateway does, the steps followed as common/scripts_run.c follows
// them (lib/resp.mjs followSteps). Run with PARLEY_TEST_REDIS=cluster, Redis is a one-node
// cluster that refuses any script touching two slots: these pass both ways.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { Cluster } from './lib/cluster.mjs';
import { Conn, callScript, loadScripts, unpack, userKey as U } from './lib/resp.mjs';

// Redis only: the scripts are called by hand.
const cluster = new Cluster('reads_steps', { gateways: 0 });
before(async () => {
    fs.rmSync(cluster.dir, { recursive: true, force: true });
    fs.mkdirSync(path.join(cluster.dir, 'tests'), { recursive: true });
    cluster.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-it-reads-'));
    await cluster.startRedis();
});
after(() => cluster.stop());

const HIST = 'parley:{c:%s}:history';
const MEMBERS = 'parley:{g:%s}:members';
const str = (v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v);
const pair = (a, b) => [a, b].sort().join('|');

async function fresh(t) {
    const r = await Conn.open(cluster.redisPort);
    await r.call('FLUSHALL');
    const sha = await loadScripts(cluster);
    t.after(() => r.close());
    const ev = (name, keys, args, opts) => callScript(r, sha, name, keys, args, opts);
    const s = {
        r,
        async users(...names) {
            for (const u of names) {
                await r.call('ZADD', 'parley:users', 0, u);
                await r.call('HSET', U(u, 'account'), 'pw', 'H', 'created', 1);
            }
        },
        // a stored message of conversation conv
        msg: (conv, id, from, to, data, more = {}) =>
            r.call('ZADD', `parley:{c:${conv}}:history`, id, Buffer.from(encode({ kind: 'text', id, from, to, data, sent: 1000 + id, ...more }))),
        // user's inbox: the entries (seq given in order from 1), seq and epoch in the meta
        async inbox(user, entries, epoch = 'E1') {
            let seq = 0;
            for (const e of entries) await r.call('RPUSH', U(user, 'inbox'), Buffer.from(encode({ seq: ++seq, ...e })));
            await r.call('HSET', U(user, 'meta'), 'seq', seq, 'epoch', epoch);
        },
        async group(g, members, { owner, admins = [] } = {}) {
            await r.call('SADD', `parley:{g:${g}}:members`, ...members);
            await r.call('HSET', `parley:{g:${g}}:meta`, 'open', '0', 'created', 1, ...(owner ? ['owner', owner] : []));
            for (let i = 0; i < admins.length; i++) await r.call('ZADD', `parley:{g:${g}}:admins`, i + 1, admins[i]);
            for (const u of members) await r.call('SADD', U(u, 'groups'), g);
        },
        // sync.lua as scripts_sync calls it: {recovered, seq, frames decoded}
        async sync(user, after, { epoch = 'E1', n = 100, bytes = 262144, standIns = false } = {}) {
            const res = await ev('sync', [U(user, 'meta'), U(user, 'inbox')], [after, epoch, n, bytes, user, HIST, standIns ? '1' : '0', MEMBERS], {
                buffers: true,
            });
            return [res[0], res[1], ...res.slice(2).map(unpack)];
        },
        // history.lua as scripts_history calls it
        history(user, withName, before = 0, limit = 100, bytes = 1 << 20) {
            const group = withName.startsWith('#');
            const who = group ? [`parley:{g:${withName}}:members`, `parley:{g:${withName}}:meta`] : [U(withName, 'account'), U(withName, 'account')];
            const conv = group ? withName : pair(user, withName);
            return ev('history', who, [user, group ? '1' : '0', `parley:{c:${conv}}:history`, before, limit, bytes], { buffers: true });
        },
        // contacts.lua as scripts_contacts calls it: {mode, cursor, blocked, entries: {name: {...}}, names in order}
        async contacts(user, limit, cursor = '', n = 100, preview = 256) {
            const res = await ev(
                'contacts',
                ['parley:users'],
                [
                    user,
                    limit,
                    MEMBERS,
                    'parley:{u:%s}:read',
                    HIST,
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
            );
            const out = { mode: res[0], cursor: str(res[1]), blocked: res[2].map(str), entries: {}, names: [] };
            for (let i = 3; i < res.length; i += 8) {
                const name = str(res[i]);
                const ro = res[i + 6];
                out.names.push(name);
                out.entries[name] = {
                    online: res[i + 1],
                    unread: res[i + 2],
                    read: res[i + 3],
                    peer_read: res[i + 4],
                    last: res[i + 5].length ? unpack(res[i + 5]) : null,
                    roles: Array.isArray(ro) ? { owner: str(ro[0]), role: str(ro[1]), more: ro[2], admins: ro[3].map(str) } : ro,
                    mentions: res[i + 7],
                };
            }
            return out;
        },
        // every page of the list from the first
        async allContacts(user, limit, n) {
            const names = [];
            let cursor = '';
            let pages = 0;
            do {
                const p = await s.contacts(user, limit, cursor, n);
                // about n: an SSCAN batch (a set of more than 128) may hold a few more
                assert.ok(p.names.length <= 2 * n, `a page of about ${n}: ${p.names}`);
                names.push(...p.names);
                cursor = p.cursor;
                assert.ok(++pages < 100, 'the list ends');
            } while (cursor !== '');
            return names;
        },
    };
    return s;
}

cluster.test('sync: references resolved against the histories of several conversations and groups, in order', async (t) => {
    const s = await fresh(t);
    await s.users('alice', 'bob', 'carol', 'dave');
    await s.group('#g', ['alice', 'bob', 'carol']);
    await s.group('#left', ['bob']); // alice was in it once
    await s.msg(pair('alice', 'bob'), 1, 'bob', 'alice', 'hi alice');
    await s.msg('#g', 2, 'carol', '#g', 'hello group', { reactions: { '👍': ['bob'] } });
    await s.msg(pair('alice', 'carol'), 3, 'carol', 'alice', 'from carol', { edited: 1500 });
    await s.msg('#left', 4, 'bob', '#left', 'not for alice');
    await s.msg(pair('alice', 'dave'), 6, 'dave', 'alice', '', { deleted: 1600, by: 'dave' });
    await s.inbox('alice', [
        { id: 1, w: 'bob' },
        { id: 2, w: '#g' },
        { k: 'e', id: 3, w: 'carol', from: 'carol', at: 1500 },
        { id: 4, w: '#left' },
        { k: 'd', id: 5, w: 'bob', by: 'bob', at: 1550 },
        { k: 'r', id: 2, w: '#g', from: 'bob', emoji: '👍', on: true },
        { id: 3, w: 'carol' },
        { k: 'e', id: 6, w: 'dave', from: 'dave', at: 1590 },
        { kind: 'text', seq: 9, id: 0, from: 'bob', to: 'alice', data: 'an old full copy' },
    ]);
    const res = await s.sync('alice', 0);
    assert.deepEqual(res.slice(0, 2), [1, 9], 'recovered, seq 9');
    const f = res.slice(2);
    assert.equal(f.length, 9, 'every entry');
    assert.deepEqual(
        f.map((x) => x.seq),
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
        'in order',
    );
    assert.deepEqual([f[0].kind, f[0].data, f[0].from], ['text', 'hi alice', 'bob'], 'a 1:1 text from its history');
    assert.deepEqual([f[1].kind, f[1].data, f[1].reactions], ['text', 'hello group', { '👍': ['bob'] }], 'a group text, its reactions');
    assert.deepEqual([f[2].kind, f[2].data, f[2].edited, f[2].with], ['edit', 'from carol', 1500, 'carol'], 'an edit reference: the current data');
    assert.deepEqual([f[3].kind, f[3].id, f[3].with], ['gone', 4, '#left'], 'a group alice is not in: gone');
    assert.deepEqual([f[4].kind, f[4].id, f[4].by], ['delete', 5, 'bob'], 'a delete reference');
    assert.deepEqual([f[5].kind, f[5].emoji, f[5].on], ['react', '👍', true], 'a react reference of a group she is in');
    assert.deepEqual([f[6].kind, f[6].data, f[6].id], ['text', 'from carol', 3], 'the same message twice in a page');
    assert.deepEqual([f[7].kind, f[7].by, f[7].deleted], ['delete', 'dave', 1600], 'an edit of a message deleted since: its delete');
    assert.deepEqual([f[8].kind, f[8].data], ['text', 'an old full copy'], 'an old full copy as it is');

    // a page from the middle, of n entries
    const mid = await s.sync('alice', 3, { n: 2 });
    assert.deepEqual(
        mid.slice(2).map((x) => [x.seq, x.kind]),
        [
            [4, 'gone'],
            [5, 'delete'],
        ],
        'after 3, two entries',
    );

    // a message gone from its history: not recovered, or a stand-in
    await s.r.call('ZREMRANGEBYSCORE', `parley:{c:${pair('alice', 'bob')}}:history`, 1, 1);
    assert.deepEqual((await s.sync('alice', 0)).slice(0, 2), [0, 9], 'a client sync: not recovered');
    const push = await s.sync('alice', 0, { standIns: true });
    assert.deepEqual([push[0], push[2].kind, push[2].id, push[2].with], [1, 'gone', 1, 'bob'], 'the offline push: a stand-in');
    assert.equal(push.length, 11, 'and the rest');

    // another epoch, a seq ahead, nothing new
    assert.deepEqual(await s.sync('alice', 0, { epoch: 'E0' }), [0, 9], 'another epoch');
    assert.deepEqual(await s.sync('alice', 10), [0, 9], 'a seq ahead');
    assert.deepEqual(await s.sync('alice', 9), [1, 9], 'nothing after the seq');
});

cluster.test('sync: B bytes a page across conversations, cut from the probed sizes, then exactly', async (t) => {
    const s = await fresh(t);
    await s.users('alice', 'bob', 'carol');
    const big = (c) => c.repeat(3000);
    const entries = [];
    // alternating conversations, 3 KB each
    for (let id = 1; id <= 12; id++) {
        const peer = id % 2 ? 'bob' : 'carol';
        await s.msg(pair('alice', peer), id, peer, 'alice', big(String(id % 10)));
        entries.push({ id, w: peer });
    }
    await s.inbox('alice', entries);
    const all = await s.sync('alice', 0, { bytes: 1 << 20 });
    assert.equal(all.length - 2, 12, 'everything within 1 MB');
    let after = 0;
    const pages = [];
    while (after < 12) {
        const p = await s.sync('alice', after, { bytes: 10000 });
        assert.equal(p[0], 1, 'recovered');
        const seqs = p.slice(2).map((x) => x.seq);
        assert.ok(seqs.length >= 1, 'a page moves on');
        assert.equal(seqs[0], after + 1, 'contiguous');
        const bytes = p.slice(2).reduce((n, x) => n + encode(x).length, 0);
        assert.ok(seqs.length === 1 || bytes <= 10000, `within B: ${bytes}`);
        pages.push(seqs.length);
        after = seqs[seqs.length - 1];
    }
    assert.ok(pages.every((n) => n <= 3) && pages.length >= 4, `pages of at most 3 entries of 3 KB: ${pages}`);
    // one entry bigger than B: alone
    const one = await s.sync('alice', 0, { bytes: 100 });
    assert.deepEqual(
        one.slice(2).map((x) => x.seq),
        [1],
        'the first entry always',
    );
});

cluster.test('sync: only the messages of the page travel: 20 conversations of 60 KB messages, a page of 100 KB', async (t) => {
    const s = await fresh(t);
    const peers = Array.from({ length: 20 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    await s.users('alice', ...peers);
    const entries = [];
    for (let i = 0; i < peers.length; i++) {
        await s.msg(pair('alice', peers[i]), i + 1, peers[i], 'alice', 'x'.repeat(60000));
        entries.push({ id: i + 1, w: peers[i] });
    }
    await s.inbox('alice', entries);
    const sent = async () => Number(/total_net_output_bytes:(\d+)/.exec(await s.r.call('INFO', 'stats'))[1]);
    const before = await sent();
    const res = await s.sync('alice', 0, { bytes: 100000 });
    const out = (await sent()) - before;
    assert.deepEqual(
        res.slice(2).map((x) => x.seq),
        [1],
        'one 60 KB entry: the second would pass 100 KB',
    );
    // the page's reply and the read of its message (~120 KB), not the 20 messages (1.2 MB)
    t.diagnostic(`Redis sent ${out} bytes for the page`);
    assert.ok(out < 130000, `only the page's message sent, twice (read, page): ${out} bytes`);
});

cluster.test('sync: a page of entries of 150 conversations: a fork of 150 steps', async (t) => {
    const s = await fresh(t);
    const peers = Array.from({ length: 150 }, (_, i) => `p${String(i).padStart(3, '0')}`);
    await s.users('alice', ...peers);
    const entries = [];
    for (let i = 0; i < peers.length; i++) {
        await s.msg(pair('alice', peers[i]), i + 1, peers[i], 'alice', `m${i}`);
        entries.push({ id: i + 1, w: peers[i] });
    }
    await s.inbox('alice', entries);
    const res = await s.sync('alice', 0, { n: 200 });
    assert.deepEqual(
        res.slice(2).map((x) => x.data),
        peers.map((_, i) => `m${i}`),
        'each from its own conversation',
    );
});

cluster.test('history: the access check on the other tag, then the page of the conversation', async (t) => {
    const s = await fresh(t);
    await s.users('alice', 'bob');
    await s.group('#g', ['alice', 'bob']);
    for (let id = 1; id <= 5; id++) await s.msg(pair('alice', 'bob'), id, 'bob', 'alice', `m${id}`);
    for (let id = 6; id <= 8; id++) await s.msg('#g', id, 'bob', '#g', `g${id}`);
    const datas = (res) => res.slice(1).map((x) => unpack(x).data);
    let res = await s.history('alice', 'bob');
    assert.deepEqual([res[0], datas(res)], [0, ['m1', 'm2', 'm3', 'm4', 'm5']], 'a 1:1 history');
    res = await s.history('alice', 'bob', 4, 2);
    assert.deepEqual([res[0], datas(res)], [1, ['m2', 'm3']], 'before 4, two, more');
    res = await s.history('alice', '#g');
    assert.deepEqual([res[0], datas(res)], [0, ['g6', 'g7', 'g8']], 'a group history');
    assert.equal(str(await s.history('alice', 'nobody')), 'no_such_user', 'an unknown user');
    assert.equal(str(await s.history('alice', '#none')), 'no_such_user', 'an unknown group');
    await s.r.call('SREM', 'parley:{g:#g}:members', 'alice');
    assert.equal(str(await s.history('alice', '#g')), 'forbidden', 'a group she is not in');
});

cluster.test('contacts: every field of a person and a group entry, from their own tags', async (t) => {
    const s = await fresh(t);
    await s.users('alice', 'bob', 'carol', 'dave', 'erin');
    await s.r.call('SADD', U('alice', 'contacts'), 'bob', 'carol');
    await s.group('#g', ['alice', 'bob', 'dave'], { owner: 'bob', admins: ['dave'] });
    await s.msg(pair('alice', 'bob'), 1, 'bob', 'alice', 'é'.repeat(200), { reactions: { '👍': ['alice'] } });
    await s.msg('#g', 2, 'dave', '#g', 'short');
    await s.r.call('HSET', U('alice', 'unread'), 'bob', 3, '#g', 1);
    await s.r.call('HSET', U('alice', 'read'), 'bob', 0, '#g', 1);
    await s.r.call('HSET', U('alice', 'mentions'), '#g', 1);
    await s.r.call('HSET', U('bob', 'read'), 'alice', 1);
    await s.r.call('SADD', 'parley:online', 'bob', 'carol', 'alice');
    await s.r.call('SADD', U('alice', 'hidden'), 'carol');
    await s.r.call('SADD', U('alice', 'blocks'), 'carol');

    // beyond the everyone limit: contacts, groups, then members (dave)
    const p = await s.contacts('alice', 2, '', 100, 100);
    assert.equal(p.mode, 0, 'contacts mode');
    assert.equal(p.cursor, '', 'one page');
    assert.deepEqual(p.blocked, ['carol'], 'the first page: whom she blocks');
    assert.deepEqual(p.names, ['bob', 'carol', '#g', 'dave'], 'contacts, groups, members');
    const bob = p.entries.bob;
    assert.deepEqual([bob.online, bob.unread, bob.read, bob.peer_read, bob.roles, bob.mentions], [1, 3, 0, 1, 0, 0], 'bob');
    assert.ok(bob.last.truncated && bob.last.data.length === 50 && bob.last.reactions === undefined, 'bob: a preview cut on a character, no reactions');
    assert.equal(p.entries.carol.online, -1, 'carol hidden');
    assert.equal(p.entries.carol.last, null, 'no message with carol');
    const g = p.entries['#g'];
    assert.deepEqual([g.online, g.unread, g.read, g.peer_read, g.mentions, g.last.data], [1, 1, 1, 0, 1, 'short'], '#g');
    assert.deepEqual(g.roles, { owner: 'bob', role: 'member', more: 0, admins: ['dave'] }, '#g roles');
    assert.equal(p.entries.dave.online, 0, 'dave offline');

    // everyone mode
    const e = await s.contacts('alice', 100);
    assert.equal(e.mode, 1, 'everyone mode');
    assert.deepEqual(e.names, ['bob', 'carol', 'dave', 'erin', '#g'], 'everyone but her, then her groups');
    const next = await s.contacts('alice', 100, '', 2);
    assert.deepEqual([next.names, next.cursor], [['bob'], 'u:2'], 'she counts among the n');
    assert.deepEqual((await s.contacts('alice', 100, 'u:2', 2)).blocked, [], 'blocked on the first page only');

    // a group's online flag: only she is online
    await s.r.call('SREM', 'parley:online', 'bob');
    assert.equal((await s.contacts('alice', 2)).entries['#g'].online, 0, 'nobody else online in #g');
    await assert.rejects(s.contacts('alice', 2, 'x'), /contacts: bad cursor/, 'a bad cursor');
});

cluster.test('contacts: the member phase across groups, each member once (up to 32 groups), pages of about n', async (t) => {
    const s = await fresh(t);
    const people = Array.from({ length: 40 }, (_, i) => `u${String(i).padStart(2, '0')}`);
    await s.users('alice', ...people);
    await s.r.call('SADD', U('alice', 'contacts'), 'u00', 'u01');
    // three groups sharing members; one big one (scanned)
    await s.group('#a', ['alice', ...people.slice(0, 20)]);
    await s.group('#b', ['alice', ...people.slice(10, 30)]);
    await s.group('#c', ['alice', ...people.slice(25, 40)]);
    const big = Array.from({ length: 300 }, (_, i) => `z${String(i).padStart(3, '0')}`);
    await s.group('#z', ['alice', 'u05', ...big]);
    for (const n of [7, 50]) {
        const names = await s.allContacts('alice', 1, n);
        const members = names.filter((x) => !x.startsWith('#') && x !== 'u00' && x !== 'u01');
        assert.deepEqual(
            names.filter((x) => x.startsWith('#')),
            ['#a', '#b', '#c', '#z'],
            `n ${n}: the groups`,
        );
        assert.equal(new Set(members).size, members.length, `n ${n}: each member once`);
        assert.deepEqual(new Set(members), new Set([...people.slice(2), ...big]), `n ${n}: every member but the contacts and her`);
        assert.deepEqual(names.slice(0, 2), ['u00', 'u01'], `n ${n}: the contacts first`);
    }
});

cluster.test("contacts: a big group's online flag, exact while the members or the online users are at most 1,024", async (t) => {
    const s = await fresh(t);
    await s.users('alice');
    const members = Array.from({ length: 1500 }, (_, i) => `m${i}`);
    await s.group('#big', ['alice', ...members]);
    const online = async () => (await s.contacts('alice', 0)).entries['#big'].online;
    await s.r.call('SADD', 'parley:online', 'alice');
    assert.equal(await online(), 0, 'only she');
    await s.r.call('SADD', 'parley:online', 'm7');
    assert.equal(await online(), 1, 'one other member among 1,500: exact (few online)');
    // many online, few of them members: judged from a sample (may say offline), never wrong the other way
    const others = Array.from({ length: 1100 }, (_, i) => `o${i}`);
    await s.r.call('SREM', 'parley:online', 'm7');
    await s.r.call('SADD', 'parley:online', ...others);
    assert.equal(await online(), 0, 'no other member online: 0');
    await s.r.call('SADD', 'parley:online', ...members);
    assert.equal(await online(), 1, 'every member online: 1');
});

cluster.test('the reads answer at maxmemory: every step says no-writes (Redis refuses any other script there)', async (t) => {
    const s = await fresh(t);
    await s.users('alice', 'bob');
    await s.group('#g', ['alice', 'bob']);
    await s.msg(pair('alice', 'bob'), 1, 'bob', 'alice', 'hi');
    await s.msg('#g', 2, 'bob', '#g', 'all');
    await s.inbox('alice', [
        { id: 1, w: 'bob' },
        { id: 2, w: '#g' },
    ]);
    await s.r.call('CONFIG', 'SET', 'maxmemory', 1);
    try {
        await assert.rejects(s.r.call('SET', 'x', '1'), /OOM/, 'a write is refused');
        assert.deepEqual(
            (await s.sync('alice', 0)).slice(2).map((f) => f.data),
            ['hi', 'all'],
            'sync',
        );
        assert.equal((await s.history('alice', '#g')).length, 2, 'history');
        assert.deepEqual((await s.contacts('alice', 100)).names, ['bob', '#g'], 'contacts');
    } finally {
        await s.r.call('CONFIG', 'SET', 'maxmemory', 0);
    }
});
