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
import { Client, brief } from './lib/client.mjs';
import { Cluster, waitFor } from './lib/cluster.mjs';

const PAGE_ENTRIES = 8;
const PAGE_BYTES = 65536;
const common = ['--page-entries', String(PAGE_ENTRIES), '--page-bytes', String(PAGE_BYTES), '--rate', '2000', '--burst', '2000'];
const cluster = new Cluster('bounded_reads', {
    gatewayArgs: (i) => (i === 1 ? [...common, '--ping-interval', '1', '--send-queue', '65536'] : common),
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
