// Per-user send budgets and byte caps (issue 12; docs/protocol.md "Per-user
// send budgets"), each with a bystander served meanwhile:
// - a user over the message budget, all sessions and gateways together, gets
//   `error rate_limited` with the cid and the message is not stored; the same
//   cid later is stored once (router: --user-rate 5 --user-burst 10);
// - over the inbox-write budget with group texts (each costs its members);
// - --inbox-bytes: the oldest entries go, a sync from before them answers
//   recovered: false.
// The later tests replace the router with one started with their flags. The
// buckets' arithmetic for every kind (messages, inbox writes, bytes) and the
// history bytes cap are checked in scripts.test.mjs.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, sendAck } from './lib/client.mjs';
import { Cluster, waitFor } from './lib/cluster.mjs';

const RATE = 5;
const BURST = 10;
const cluster = new Cluster('send_limits', { routerArgs: ['--user-rate', String(RATE), '--user-burst', String(BURST)] });
before(() => cluster.start());
after(() => cluster.stop());

cluster.test('over the message budget from three sessions: rate_limited with the cid, not stored; a bystander is served', async () => {
    const [a, b, x, y] = await cluster.users(['a', 'b', 'x', 'y']);
    const A = [
        await Client.connect(cluster.gw(0), a.token, { name: 'a1' }),
        await Client.connect(cluster.gw(1), a.token, { name: 'a2' }),
        await Client.connect(cluster.gw(0), a.token, { name: 'a3' }),
    ];
    const B = await Client.connect(cluster.gw(1), b.token, { name: 'b' });
    const X = await Client.connect(cluster.gw(0), x.token, { name: 'x' });
    const Y = await Client.connect(cluster.gw(1), y.token, { name: 'y' });
    const PER = 10;
    for (let i = 0; i < PER; i++) for (const [j, c] of A.entries()) c.send({ kind: 'text', to: b.name, data: `m${j}.${i}`, cid: `c${j}.${i}` });
    // the bystander, meanwhile
    const bys = await sendAck(X, y.name, 'unaffected', 'x1');
    await Y.next({ kind: 'text', id: bys.id });

    const answers = [];
    for (const [j, c] of A.entries())
        for (let i = 0; i < PER; i++) answers.push(await c.next((f) => (f.kind === 'ack' || f.kind === 'error') && f.cid === `c${j}.${i}`));
    const acked = answers.filter((f) => f.kind === 'ack');
    const limited = answers.filter((f) => f.kind === 'error');
    assert.ok(
        limited.every((f) => f.code === 'rate_limited'),
        limited.map(brief).join(', '),
    );
    // the burst, plus what refilled while the 30 were stored (well under a second here)
    assert.ok(acked.length >= BURST && acked.length <= BURST + 2 * RATE, `acked ${acked.length} of ${answers.length}`);
    assert.equal(acked.length + limited.length, 3 * PER);
    const conv = [a.name, b.name].sort().join('|');
    assert.equal(Number(await cluster.redis('ZCARD', `parley:{c:${conv}}:history`)), acked.length, 'only the acked are stored');
    for (const ack of acked) await B.next({ kind: 'text', id: ack.id });
    await B.expectNone({ kind: 'text' }, 200, 'a refused message delivered');

    // the budget refills: the same cid, sent again, is stored once
    const cid = limited[0].cid;
    const c = A[Number(cid.slice(1).split('.')[0])];
    const ack = await waitFor(
        async () => {
            c.send({ kind: 'text', to: b.name, data: 'again', cid });
            const f = await c.next((g) => (g.kind === 'ack' || g.kind === 'error') && g.cid === cid);
            return f.kind === 'ack' && f;
        },
        { timeout: 5000, interval: 1000 / RATE, what: `${cid} acked once the budget refilled` },
    );
    await B.next({ kind: 'text', id: ack.id });
    c.send({ kind: 'text', to: b.name, data: 'again', cid });
    const dup = await c.next((g) => g.kind === 'ack' && g.cid === cid);
    assert.equal(dup.id, ack.id, 'a retry after the ack: the same id, no second copy');
    await B.expectNone({ kind: 'text', id: ack.id }, 200, 'a second copy');
});

// A router with other limits in place of the file's one (the last flag wins).
async function routerWith(args) {
    await cluster.router.proc.stop();
    await cluster.startRouter({ args });
}

cluster.test('over the inbox-write budget with a group: rate_limited with the cid, not stored; a bystander is served', async () => {
    await routerWith(['--user-rate', '0', '--user-fanout-rate', '1', '--user-fanout-burst', '20']);
    const us = await cluster.users(['g', 'g', 'g', 'g', 'g', 'x', 'y']);
    const [s, x, y] = [us[0], us[5], us[6]];
    const S = await Client.connect(cluster.gw(0), s.token, { name: 's' });
    const X = await Client.connect(cluster.gw(1), x.token, { name: 'x' });
    const Y = await Client.connect(cluster.gw(0), y.token, { name: 'y' });
    const g = await cluster.createGroup(
        S,
        'five',
        us.slice(1, 5).map((u) => u.name),
    );
    // five members: each text costs 5 inbox writes; a burst of 20 lets 4 through
    for (let i = 0; i < 6; i++) S.send({ kind: 'text', to: g, data: `t${i}`, cid: `g${i}` });
    const bys = await sendAck(X, y.name, 'unaffected', 'x1');
    await Y.next({ kind: 'text', id: bys.id });
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await S.next((f) => (f.kind === 'ack' || f.kind === 'error') && f.cid === `g${i}`));
    assert.deepEqual(
        answers.map((f) => (f.kind === 'ack' ? 'ack' : f.code)),
        ['ack', 'ack', 'ack', 'ack', 'rate_limited', 'rate_limited'],
    );
    assert.equal(Number(await cluster.redis('ZCARD', `parley:{c:${g}}:history`)), 4, 'the refused are not stored');
});

cluster.test(
    'the inbox cap: the oldest entries go, a sync from before them is not recovered; entries are references, counted in bytes; a bystander is served',
    async () => {
        await routerWith(['--inbox-cap', '3']);
        const [a, b, x, y] = await cluster.users(['a', 'b', 'x', 'y']);
        const A = await Client.connect(cluster.gw(0), a.token, { name: 'a' });
        const X = await Client.connect(cluster.gw(1), x.token, { name: 'x' });
        const Y = await Client.connect(cluster.gw(0), y.token, { name: 'y' });
        const acks = [];
        for (let i = 0; i < 6; i++) acks.push(await sendAck(A, b.name, `${i}`.repeat(20000), `big${i}`));
        const bys = await sendAck(X, y.name, 'unaffected', 'x1');
        await Y.next({ kind: 'text', id: bys.id });
        const sizes = (await cluster.redisBuffers('LRANGE', `parley:{u:${b.name}}:inbox`, 0, -1)).map((e) => e.length);
        const total = sizes.reduce((p, q) => p + q, 0);
        // references to the history, not copies of the 20,000-byte texts
        assert.ok(sizes.length === 3 && sizes.every((n) => n < 64), `b's inbox keeps the newest 3 references: ${sizes}`);
        assert.equal(Number(await cluster.redis('HGET', `parley:{u:${b.name}}:meta`, 'bytes')), total, 'counted exactly');
        // b comes online and syncs from the start: entries 1..3 are gone
        const B = await Client.connect(cluster.gw(1), b.token, { name: 'b' });
        for (const ack of acks.slice(3)) await B.next({ kind: 'text', id: ack.id });
        B.send({ kind: 'sync', after: 0, epoch: B.hello.epoch });
        const end = await B.next({ kind: 'sync' });
        assert.equal(end.recovered, false, `a sync from before the kept entries: ${brief(end)}`);
    },
);
