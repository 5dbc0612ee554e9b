// Bounded work per request (issue 12; docs/protocol.md "Bounded reads"):
// sync, the offline push and gap fetches come in pages of at most
// --page-entries entries and --page-bytes bytes, the next page fetched only
// once the session drained; a reader that does not read makes the gateway
// fetch nothing more and is dropped by the keepalive; history answers are cut
// at --page-bytes; hello carries at most --hello-entries entries with `last`
// cut to a preview, the rest in `users` pages. Structural checks only: page
// counts (parley_gateway_replay_pages_total), entries and bytes per reply.
// Cluster: redis, router, gw1 (small pages), gw2 (small pages, 1 s pings,
// small send queue).
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';
import WebSocket from 'ws';
import { after, before } from 'node:test';
import { Client, brief, mintToken } from './lib/client.mjs';
import { Cluster, SECRET, waitFor } from './lib/cluster.mjs';

const PAGE_ENTRIES = 8;
const PAGE_BYTES = 65536;
const HELLO_ENTRIES = 4;
const PREVIEW = 64;
const GROUPS_CREATED = 3;
const common = ['--page-entries', String(PAGE_ENTRIES), '--page-bytes', String(PAGE_BYTES), '--groups-created', String(GROUPS_CREATED)];
const cluster = new Cluster('bounded_reads', {
    gatewayArgs: (i) =>
        i === 1
            ? [...common, '--ping-interval', '1', '--send-queue', '65536', '--rate', '100', '--burst', '100']
            : [...common, '--hello-entries', String(HELLO_ENTRIES), '--preview-bytes', String(PREVIEW), '--rate', '2000', '--burst', '2000'],
});
before(() => cluster.start());
after(() => cluster.stop());

const U = (user, what) => `parley:{u:${user}}:${what}`;

// Fills user's inbox with n entries of `size` bytes of data from `from`
// (stored exactly as send.lua stores them: a text map with its seq), so a
// big backlog costs no send path time. Returns the ids, oldest first.
async function fillInbox(user, from, n, size, firstId = 1000000) {
    const data = 'x'.repeat(size);
    const ids = [];
    const base = Number((await cluster.redis('HGET', U(user, 'meta'), 'seq')) || 0);
    for (let i = 0; i < n; i += 50) {
        const batch = [];
        for (let k = i; k < Math.min(n, i + 50); k++) {
            const id = firstId + k;
            ids.push(id);
            batch.push(Buffer.from(encode({ kind: 'text', id, from, to: user, data, sent: Date.now(), cid: `f${k}`, seq: base + k + 1 })));
        }
        await cluster.redis('RPUSH', U(user, 'inbox'), ...batch);
    }
    await cluster.redis('HSET', U(user, 'meta'), 'seq', String(base + n));
    return ids;
}

async function pages(i) {
    const text = await (await fetch(`http://127.0.0.1:${cluster.gw(i)}/metrics`)).text();
    const m = text.match(/^parley_gateway_replay_pages_total (\d+)$/m);
    assert.ok(m, 'parley_gateway_replay_pages_total in /metrics');
    return Number(m[1]);
}

// The texts a client got, in arrival order.
function texts(c) {
    return c.all({ kind: 'text' });
}

// Takes the next n texts (so a later next() or expectNone sees only newer ones).
async function take(c, n, timeoutMs = 20000) {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await c.next({ kind: 'text' }, timeoutMs));
    return out;
}

cluster.test('the offline push comes in bounded pages, in seq order, each entry once, to a reading client', async () => {
    const [heavy] = await cluster.users(['heavy']);
    // session_open creates the epoch; close it so the entries are offline
    const first = await Client.connect(cluster.gw(0), heavy.token, { name: 'heavy-first' });
    await first.close();
    await waitFor(async () => (await cluster.redis('SCARD', U(heavy.name, 'sessions'))) === 0, { what: 'first session closed' });
    const N = 60;
    const ids = await fillInbox(heavy.name, 'filler', N, 20000);
    const before = await pages(0);
    const H = await Client.connect(cluster.gw(0), heavy.token, { name: 'heavy' });
    const got = await take(H, N);
    assert.deepEqual(
        got.map((f) => f.id),
        ids,
        'every offline entry once, in seq order',
    );
    assert.deepEqual(
        got.map((f) => f.seq),
        ids.map((_, i) => i + 1),
        'seqs 1..N',
    );
    // 20 KB entries, 64 KiB pages: 3 entries a page (the bytes bound, not the
    // entries bound, cuts them)
    const used = (await pages(0)) - before;
    assert.ok(used >= Math.ceil(N / 3), `the push took ${used} pages of at most ${PAGE_BYTES} bytes (>= ${Math.ceil(N / 3)})`);
    await H.expectNone({ kind: 'text' }, 200, 'no entry twice');
});

cluster.test('sync pages a big range and ends with the sync frame; a bystander on the same gateway is served meanwhile', async () => {
    const [heavy, by] = await cluster.users(['heavy', 'by']);
    const H = await Client.connect(cluster.gw(0), heavy.token, { name: 'heavy' });
    const ids = await fillInbox(heavy.name, 'filler', 40, 1000);
    const B = await Client.connect(cluster.gw(0), by.token, { name: 'by' });
    const before = await pages(0);
    H.send({ kind: 'sync', after: 0, epoch: H.hello.epoch });
    B.send({ kind: 'text', to: by.name, data: 'still here', cid: 'b1' });
    const ack = await B.next({ kind: 'ack', cid: 'b1' });
    assert.ok(ack.id > 0, brief(ack));
    const end = await H.next({ kind: 'sync' }, 20000);
    assert.deepEqual([end.recovered, end.seq], [true, 40], brief(end));
    const got = await take(H, 40);
    assert.deepEqual(
        got.map((f) => f.id),
        ids,
        'every entry after 0 once, in order, before the sync frame',
    );
    const idxEnd = H.frames.indexOf(end);
    assert.ok(
        H.frames.slice(idxEnd).every((f) => f.kind !== 'text'),
        'the sync frame comes after the last page',
    );
    const used = (await pages(0)) - before;
    assert.ok(used >= 40 / PAGE_ENTRIES, `sync of 40 small entries took ${used} pages of at most ${PAGE_ENTRIES} entries`);
    // small data: one sync, one call, the same answer as ever
    H.send({ kind: 'sync', after: 39, epoch: H.hello.epoch });
    const f = await H.next({ kind: 'text' });
    assert.equal(f.seq, 40);
    const end2 = await H.next({ kind: 'sync' });
    assert.deepEqual([end2.recovered, end2.seq], [true, 40]);
});

cluster.test(
    'a client that reconnects with an offline backlog and does not read: nothing more is fetched for it, the keepalive drops it, nothing is lost',
    async () => {
        const [heavy] = await cluster.users(['stall']);
        const first = await Client.connect(cluster.gw(1), heavy.token, { name: 'stall-first' });
        await first.close();
        await waitFor(async () => (await cluster.redis('SCARD', U(heavy.name, 'sessions'))) === 0, { what: 'first session closed' });
        // 24 MB: far more than loopback socket buffers can swallow
        const N = 800;
        const ids = await fillInbox(heavy.name, 'filler', N, 30000);
        const before = await pages(1);
        const ws = new WebSocket(`ws://127.0.0.1:${cluster.gw(1)}/ws?token=${heavy.token}`, { maxPayload: 16 << 20 });
        ws.on('error', () => {});
        await new Promise((resolve, reject) => {
            ws.once('open', resolve);
            ws.once('unexpected-response', () => reject(new Error('upgrade refused')));
        });
        ws._socket.pause(); // reads nothing more: no pongs either
        const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
        await waitFor(async () => (await cluster.redis('SCARD', U(heavy.name, 'sessions'))) === 0, {
            timeout: 15000,
            what: 'the stalled reader dropped by the keepalive (2 x --ping-interval 1)',
        });
        const used = (await pages(1)) - before;
        // 30 KB entries: 2 a page; all of them would be 400 pages
        assert.ok(used < N / 2, `pages fetched for a reader that does not read: ${used} of the ${N / 2} the backlog holds`);
        ws._socket.resume();
        ws.terminate();
        await closed;
        // nothing lost: a new session syncs from 0 and gets all of it
        const H = await Client.connect(cluster.gw(0), heavy.token, { name: 'stall-again' });
        H.send({ kind: 'sync', after: 0, epoch: H.hello.epoch });
        const end = await H.next({ kind: 'sync' }, 60000);
        assert.equal(end.recovered, true, brief(end));
        const got = texts(H).map((f) => f.id);
        // the entries pushed to it (none: pushed was moved by the stalled session) and the sync's
        assert.deepEqual([...new Set(got)], ids, 'every entry, in order');
    },
);

cluster.test('a second sync while one runs waits for it; a third is refused with rate_limited', async () => {
    const [heavy] = await cluster.users(['sq']);
    const H = await Client.connect(cluster.gw(0), heavy.token, { name: 'sq' });
    await fillInbox(heavy.name, 'filler', 40, 20000); // 14 pages of 64 KiB
    for (let i = 0; i < 3; i++) H.send({ kind: 'sync', after: 0, epoch: H.hello.epoch });
    const err = await H.next({ kind: 'error' }, 20000);
    assert.equal(err.code, 'rate_limited', brief(err));
    const first = await take(H, 40);
    const end1 = await H.next({ kind: 'sync' }, 20000);
    const second = await take(H, 40);
    const end2 = await H.next({ kind: 'sync' }, 20000);
    assert.deepEqual(
        [...first, ...second].map((f) => f.seq),
        [...Array(40).keys(), ...Array(40).keys()].map((i) => i + 1),
        'each sync replays 1..40 in order',
    );
    assert.ok(H.frames.indexOf(end1) < H.frames.indexOf(second[0]), 'the second sync starts after the first one ended');
    assert.deepEqual([end2.recovered, end2.seq], [true, 40]);
});

cluster.test('hello carries at most --hello-entries entries with `last` cut to a preview; users pages bring the rest; small lists unchanged', async () => {
    const people = await cluster.users(['hp', 'talker', 'p', 'p', 'p', 'p', 'p', 'p']);
    const [hp, talker] = people;
    const T = await Client.connect(cluster.gw(0), talker.token, { name: 'talker' });
    const long = `${'é'.repeat(100)}tail`;
    T.send({ kind: 'text', to: hp.name, data: long, cid: 'long-1' });
    const ack = await T.next({ kind: 'ack', cid: 'long-1' });
    const H = await Client.connect(cluster.gw(0), hp.token, { name: 'hp' });
    assert.ok(H.hello.users.length <= HELLO_ENTRIES, `hello: ${H.hello.users.length} entries`);
    assert.equal(H.hello.more, true, 'hello says more follow');
    const entries = [...H.hello.users];
    let page;
    let pages = 0;
    do {
        page = await H.next({ kind: 'users' });
        pages++;
        assert.ok(page.users.length <= HELLO_ENTRIES, `users page: ${page.users.length} entries`);
        entries.push(...page.users);
    } while (page.more);
    const names = entries.map((u) => u.username);
    assert.equal(new Set(names).size, names.length, 'each entry once');
    const everyone = (await cluster.redis('ZRANGE', 'parley:users', '0', '-1')).filter((u) => u !== hp.name);
    assert.deepEqual([...names].sort(), everyone.sort(), 'every user over hello and the pages (everyone mode)');
    assert.ok(pages >= Math.ceil(everyone.length / HELLO_ENTRIES) - 1, `${pages} users pages`);
    const e = entries.find((u) => u.username === talker.name);
    assert.equal(e.last.id, ack.id, brief(e));
    assert.equal(e.last.truncated, true, 'the preview says it was cut');
    assert.ok(
        Buffer.byteLength(e.last.data) <= PREVIEW && long.startsWith(e.last.data),
        `preview ${Buffer.byteLength(e.last.data)} bytes, a prefix on a character boundary`,
    );
    // history still has the whole message
    H.send({ kind: 'history', with: talker.name });
    const h = await H.next({ kind: 'history' });
    assert.equal(h.messages.at(-1).data, long);
    // a small list (the default --hello-entries 100 of gw2): one hello, no `more`, no pages
    const H2 = await Client.connect(cluster.gw(1), hp.token, { name: 'hp@gw2' });
    assert.equal(H2.hello.more, undefined, 'no more field on a complete hello');
    assert.deepEqual(H2.hello.users.map((u) => u.username).sort(), everyone.sort(), 'complete hello');
    await H2.expectNone({ kind: 'users' }, 200, 'users page after a complete hello');
});

cluster.test('history is cut at --page-bytes with more; paging with before gets every message once', async () => {
    const [a, b] = await cluster.users(['ha', 'hb']);
    const A = await Client.connect(cluster.gw(0), a.token, { name: 'ha' });
    const ids = [];
    for (let i = 0; i < 10; i++) {
        A.send({ kind: 'text', to: b.name, data: `${i}`.padEnd(20000, '.'), cid: `h${i}` });
        ids.push((await A.next({ kind: 'ack', cid: `h${i}` })).id);
    }
    const got = [];
    let before;
    let calls = 0;
    for (;;) {
        A.send({ kind: 'history', with: b.name, limit: 100, ...(before ? { before } : {}) });
        const h = await A.next({ kind: 'history' });
        calls++;
        const bytes = h.messages.reduce((n, m) => n + m.data.length, 0);
        assert.ok(h.messages.length >= 1 && bytes <= PAGE_BYTES, `a page of ${h.messages.length} messages, ${bytes} bytes of data`);
        got.unshift(...h.messages.map((m) => m.id));
        if (!h.more) break;
        before = h.messages[0].id;
        assert.ok(calls < 20, 'history pages end');
    }
    assert.deepEqual(got, ids, 'every message once, oldest first');
    assert.ok(calls >= 4, `20 KB messages, 64 KiB pages: ${calls} answers`);
});

const token = (name) => mintToken(SECRET, name, Math.floor(Date.now() / 1000) + 3600);
async function smembersCalls() {
    const info = await cluster.redis('INFO', 'commandstats');
    const m = String(info).match(/cmdstat_smembers:calls=(\d+)/);
    return m ? Number(m[1]) : 0;
}

cluster.test(
    "receipts, typing and group frames in a group of >= 64 members: one envelope per gateway, no session lookup per member, receipts to the reader's sessions only; bystanders served",
    async () => {
        const MEMBERS = 100;
        const prefix = `rb${Date.now() % 100000}x`;
        const r = await cluster.cli(['bulk-users', String(MEMBERS), '--prefix', prefix, '--password', 'bulk password 1'], 60000);
        assert.ok(r.ok, `bulk-users: ${r.stderr}`);
        const names = Array.from({ length: MEMBERS }, (_, i) => `${prefix}${i}`);
        const A = await Client.connect(cluster.gw(0), token(names[0]), { name: 'a' });
        const B = await Client.connect(cluster.gw(1), token(names[1]), { name: 'b' });
        const B2 = await Client.connect(cluster.gw(0), token(names[1]), { name: 'b-2' });
        const C = await Client.connect(cluster.gw(1), token(names[2]), { name: 'c' });
        let calls = await smembersCalls();
        const g = await cluster.createGroup(A, 'rb', names.slice(1));
        for (const x of [B, C]) await x.next({ kind: 'group', name: g });
        let used = (await smembersCalls()) - calls;
        assert.ok(used < 20, `group create of ${MEMBERS}: ${used} SMEMBERS (one per member would be ${MEMBERS})`);

        A.send({ kind: 'text', to: g, data: 'hi all', cid: 'g1' });
        const ack = await A.next({ kind: 'ack', cid: 'g1' });
        await B.next({ kind: 'text', id: ack.id });
        calls = await smembersCalls();
        B.send({ kind: 'read', with: g, upto: ack.id });
        const rr = await B2.next({ kind: 'read', from: names[1] });
        assert.deepEqual([rr.with, rr.upto], [g, ack.id], brief(rr));
        // a big group's other members get no receipt (docs/protocol.md "Per-user
        // throttles"): a 1:1 text sent after the read reaches them after it would have
        for (const [i, x] of [A, C].entries()) {
            B.send({ kind: 'text', to: x === A ? names[0] : names[2], data: 'after the read', cid: `rb-after-${i}` });
            const a2 = await B.next({ kind: 'ack', cid: `rb-after-${i}` });
            await x.next({ kind: 'text', id: a2.id });
            assert.deepEqual(x.all({ kind: 'read', from: names[1] }).map(brief), [], 'a receipt to another member of a big group');
        }
        await B.expectNone({ kind: 'read', from: names[1] }, 200, 'the receipt back to the reading session');
        used = (await smembersCalls()) - calls;
        assert.ok(used < 20, `read receipt to ${MEMBERS} members: ${used} SMEMBERS`);

        calls = await smembersCalls();
        C.send({ kind: 'typing', to: g });
        for (const x of [A, B, B2]) await x.next({ kind: 'typing', from: names[2] });
        await C.expectNone({ kind: 'typing', from: names[2] }, 200, 'typing back to the typist');
        used = (await smembersCalls()) - calls;
        assert.ok(used < 20, `group typing to ${MEMBERS} members: ${used} SMEMBERS`);

        // contacts search: at most 20 names whatever matches (one ZRANGEBYLEX LIMIT 20 + one SMISMEMBER)
        const res = await fetch(`http://127.0.0.1:${cluster.gw(0)}/api/users?q=${prefix}`, { headers: { authorization: `Bearer ${token(names[0])}` } });
        const found = await res.json();
        assert.equal(found.length, 20, `search among ${MEMBERS} matches: ${found.length}`);

        // a bystander outside the group is served all along
        const [by] = await cluster.users(['by']);
        const BY = await Client.connect(cluster.gw(0), by.token, { name: 'by' });
        BY.send({ kind: 'text', to: by.name, data: 'me', cid: 'by1' });
        await BY.next({ kind: 'ack', cid: 'by1' });
    },
);

cluster.test(
    'groups created per user are capped (--groups-created: forbidden); a deleted group frees its slot; big group changes cost rate tokens',
    async () => {
        const [u, v] = await cluster.users(['gc', 'gv']);
        const U1 = await Client.connect(cluster.gw(0), u.token, { name: 'gc' });
        const made = [];
        for (let i = 0; i < GROUPS_CREATED; i++) made.push(await cluster.createGroup(U1, 'gcap', [v.name]));
        U1.send({ kind: 'group', op: 'create', name: `#${cluster.name('gcap')}`, members: [v.name] });
        const err = await U1.next({ kind: 'error' });
        assert.equal(err.code, 'forbidden', brief(err));
        // the creator leaving does not free a slot (the group lives on with v) ...
        U1.send({ kind: 'group', op: 'leave', name: made[0] });
        await U1.next({ kind: 'group', name: made[0], op: 'leave' });
        U1.send({ kind: 'group', op: 'create', name: `#${cluster.name('gcap')}`, members: [] });
        assert.equal((await U1.next({ kind: 'error' })).code, 'forbidden');
        // ... its deletion (the last member leaves) does
        const V = await Client.connect(cluster.gw(0), v.token, { name: 'gv' });
        V.send({ kind: 'group', op: 'leave', name: made[0] });
        await V.next({ kind: 'group', name: made[0], op: 'leave' });
        await cluster.createGroup(U1, 'gcap', []);

        // gw2 (--rate 100 --burst 100): naming 1,000 members (the most one frame
        // may name) costs 10 more tokens
        const W = await Client.connect(cluster.gw(1), u.token, { name: 'gc@gw2' });
        const fake = Array.from({ length: 1000 }, (_, i) => `nobody${i}`);
        const answers = [];
        for (let i = 0; i < 12; i++) W.send({ kind: 'group', op: 'add', name: made[1], members: fake });
        for (let i = 0; i < 12; i++) answers.push((await W.next({ kind: 'error' })).code);
        assert.ok(answers.includes('rate_limited'), `twelve 1,000-name changes at once: ${answers}`);
        // refusals answer at once, the script's answers after a Redis round trip: any order
        assert.ok(answers.includes('no_such_user'), `the first ones run: ${answers}`);
    },
);
