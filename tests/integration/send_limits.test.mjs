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

// A refused text takes nothing from the budget (docs/protocol.md "Per-user send budgets"), in
// steps too, where the budget is taken before the recipient's checks (another slot) and given
// back by a refund step: three times the burst of refusals, then a text is acked.
cluster.test('refused texts (forbidden, no_such_user, bad_field) take nothing from the budget', async () => {
    const [a, b, y] = await cluster.users(['ra', 'rb', 'ry']);
    const A = await Client.connect(cluster.gw(0), a.token, { name: 'a' });
    const B = await Client.connect(cluster.gw(1), b.token, { name: 'b' });
    B.send({ kind: 'block', user: a.name, on: true });
    await B.next((x) => x.kind === 'block' && x.user === a.name);
    const sends = [];
    for (let i = 0; i < BURST; i++) {
        sends.push([{ kind: 'text', to: b.name, data: 'blocked', cid: `f${i}` }, 'forbidden']);
        sends.push([{ kind: 'text', to: 'nobodyhere', data: 'nobody', cid: `n${i}` }, 'no_such_user']);
        sends.push([{ kind: 'text', to: y.name, data: 'reply', reply_to: 999999999, cid: `r${i}` }, 'bad_field']);
    }
    for (const [f, code] of sends) {
        // one at a time: in steps a refusal's budget is given back when the refusal is found, so
        // refusals in flight at once count until then (docs/protocol.md)
        A.send(f);
        const e = await A.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === f.cid);
        assert.equal(e.code, code, `${f.cid}: ${brief(e)}`);
    }
    await sendAck(A, y.name, 'after the refusals', 'ok1');
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

// A cid is remembered for the dedupe time (24-48 h by default; 1-2 s here): sent again after
// the sender's record forgot it, it is a new message, stored and delivered with an id of its own
// (in steps the conversation's record of the cid, rotated on a clock of its own, must not answer
// it as the old one).
cluster.test('a cid used again after the dedupe time is a new message', async () => {
    await routerWith(['--dedupe-ttl', '1']);
    const [a, b] = await cluster.users(['ca', 'cb']);
    const A = await Client.connect(cluster.gw(0), a.token, { name: 'a' });
    const B = await Client.connect(cluster.gw(1), b.token, { name: 'b' });
    const first = await sendAck(A, b.name, 'first', 'same-cid');
    await B.next({ kind: 'text', id: first.id });
    const cids = `parley:{u:${a.name}}:cids`;
    await waitFor(async () => !(await cluster.redis('HGET', cids, 'same-cid')) && !(await cluster.redis('HGET', `${cids}:old`, 'same-cid')), {
        timeout: 10000,
        what: "the sender's record of the cid forgotten",
    });
    const second = await sendAck(A, b.name, 'second', 'same-cid');
    assert.notEqual(second.id, first.id, 'a new message, not the old one answered again');
    const got = await B.next({ kind: 'text', id: second.id });
    assert.equal(got.data, 'second');
});
