// Parley on a 3-master Redis Cluster with a replica each (issue 15), reached
// with a redis-cluster:// URL: gateways and the router run on the cluster
// link (common/clink.h; gateway/redis_link.c, router/conn.c), every script
// step routed to the master of its keys, plain commands by key, classic
// pub/sub on any node. Users are picked so that the two sides of a
// conversation keep their keys on different masters.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, healthz, sendReliably } from './lib/client.mjs';
import { Cluster, SLOTS, makeUsers, redisCommand, waitFor } from './lib/cluster.mjs';

const cluster = new Cluster('cluster_mode', { redis: 'cluster3', replicas: 1, waitSlots: false });
before(() => cluster.start());
after(() => cluster.stop());

const GW1 = () => cluster.gw(0);
const GW2 = () => cluster.gw(1);
let cidN = 0;
const cid = (p = 'c') => `${p}-${++cidN}`;

// Sends a text and waits for its answer: it must be the ack (no retry: a first refusal fails).
async function send(client, to, data) {
    const c = cid();
    client.send({ kind: 'text', to, data, cid: c });
    const f = await client.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === c, 10000);
    assert.equal(f.kind, 'ack', `${client.name} -> ${to}: ${brief(f)}`);
    return f;
}

// the nodes that are masters now
async function masters() {
    const out = [];
    for (const n of cluster.rc.nodes) {
        if (!n.proc.running) continue;
        const role = await redisCommand(n.port, ['ROLE']).catch(() => null);
        if (role && role[0] === 'master') out.push(n);
    }
    return out;
}

// the master port of a key now
async function masterPortOf(key) {
    const slot = Number(await cluster.redis('CLUSTER', 'KEYSLOT', key));
    return (await cluster.rc.masterOf(slot)).port;
}

// Fresh user names (one per base) whose keys are on pairwise different masters
// (as far as there are masters), registered over HTTP on gw1: [{name, token}].
async function usersApart(bases) {
    const names = [];
    const used = new Set();
    for (const b of bases) {
        for (let tries = 0; ; tries++) {
            const n = cluster.name(b);
            const port = await masterPortOf(`parley:{u:${n}}:meta`);
            if (!used.has(port) || used.size >= 3 || tries > 50) {
                used.add(port);
                names.push(n);
                break;
            }
        }
    }
    const tokens = await makeUsers(GW1(), names);
    return names.map((n) => ({ name: n, token: tokens[n] }));
}

cluster.test("the link comes up: every master has the gateways' and the router's named command connections and every script", async () => {
    const ms = await masters();
    assert.equal(ms.length, 3);
    await waitFor(
        async () => {
            for (const m of ms) {
                const list = await redisCommand(m.port, ['CLIENT', 'LIST']);
                for (const name of ['parley-gw:gw1:commands', 'parley-gw:gw2:commands', 'parley-router:router-1:commands'])
                    if (!list.includes(`name=${name} `)) return false;
            }
            return true;
        },
        { what: 'every master: the named command connections' },
    );
    for (const m of ms) {
        const libs = JSON.stringify(await redisCommand(m.port, ['FUNCTION', 'LIST']));
        assert.match(libs, /parley/, `:${m.port} has the send function`);
    }
    // each gateway and the router have one subscriber connection somewhere, subscribed to
    // their own channel (classic pub/sub: a PUBLISH on any node reaches them)
    const subs = await cluster.redis('PUBSUB', 'NUMSUB', 'parley:gw:gw1', 'parley:gw:gw2', 'parley:routers');
    assert.deepEqual(subs, ['parley:gw:gw1', 1, 'parley:gw:gw2', 1, 'parley:routers', 1]);
});

cluster.test('the router holds every slot lease (one key per slot, on the masters of their slots) and listens to every routing channel', async () => {
    await cluster.waitRouted(cluster.router.proc);
    const where = new Set();
    for (let i = 0; i < SLOTS; i++) {
        assert.equal(await cluster.redis('GET', `parley:slot:${i}`), 'router-1', `parley:slot:${i}`);
        where.add(await masterPortOf(`parley:slot:${i}`));
    }
    assert.equal(where.size, 3, 'the leases are spread over the 3 masters');
});

cluster.test(
    'register and login over HTTP; a 1:1 text each way between users whose keys are on two masters, on two gateways: acks and deliveries',
    async () => {
        await cluster.waitRouted(cluster.router.proc);
        const [a, b] = await usersApart(['ca', 'cb']);
        assert.notEqual(await masterPortOf(`parley:{u:${a.name}}:meta`), await masterPortOf(`parley:{u:${b.name}}:meta`));
        const A = await Client.connect(GW1(), a.token);
        const B = await Client.connect(GW2(), b.token);
        for (let i = 0; i < 3; i++) {
            const ack = await send(A, b.name, `a->b ${i}`);
            const t = await B.next((f) => f.kind === 'text' && f.cid === ack.cid);
            assert.equal(t.id, ack.id, brief(t));
            assert.equal(t.from, a.name);
            const ack2 = await send(B, a.name, `b->a ${i}`);
            const t2 = await A.next((f) => f.kind === 'text' && f.cid === ack2.cid);
            assert.equal(t2.id, ack2.id, brief(t2));
            assert.ok(ack2.id > ack.id, `ids increase within the conversation: ${ack.id} then ${ack2.id}`);
        }
        // no refusal came late either (a gateway that read PUBLISH's count of one node as "no router")
        await A.expectNone({ kind: 'error' }, 300, 'an error frame at A');
        await B.expectNone({ kind: 'error' }, 0, 'an error frame at B');
        // both inboxes hold the six messages, each on its own master
        for (const u of [a, b]) assert.equal(await cluster.redis('LLEN', `parley:{u:${u.name}}:inbox`), 6, `${u.name}'s inbox`);
    },
);

cluster.test('the CLI on the cluster URL: slots, keyslot, and inbox/history/logins/group of keys on several masters (MOVED followed)', async () => {
    await cluster.waitRouted(cluster.router.proc);
    const slots = await cluster.cli(['slots']);
    assert.equal(slots.code, 0, slots.stderr);
    assert.match(slots.stdout, /covered=16384 of 16384/);
    const [a, b] = await usersApart(['la', 'lb']);
    const ks = await cluster.cli(['keyslot', `parley:{u:${b.name}}:inbox`]);
    assert.match(ks.stdout, new RegExp(`node=127\\.0\\.0\\.1:${await masterPortOf(`parley:{u:${b.name}}:inbox`)}\n`), ks.stdout);
    const A = await Client.connect(GW1(), a.token);
    const B = await Client.connect(GW2(), b.token);
    for (const data of ['first words', 'second words']) {
        const ack = await send(A, b.name, data);
        await B.next((f) => f.kind === 'text' && f.cid === ack.cid);
    }
    const inbox = await cluster.cli(['inbox', b.name]);
    assert.equal(inbox.code, 0, inbox.stderr);
    assert.match(inbox.stdout, /-> .*first words/, inbox.stdout); // resolved in the conversation's history
    assert.match(inbox.stdout, /-> .*second words/, inbox.stdout);
    const hist = await cluster.cli(['history', a.name, b.name]);
    assert.equal(hist.code, 0, hist.stderr);
    assert.match(hist.stdout, /2 message\(s\) kept/, hist.stdout);
    assert.match(hist.stdout, new RegExp(`${b.name}: unread=\\d+ read=\\d+ mentions=0`), hist.stdout);
    const logins = await cluster.cli(['logins', a.name]);
    assert.equal(logins.code, 0, logins.stderr);
    assert.match(logins.stdout, new RegExp(`1 signed-in session\\(s\\) of ${a.name}`), logins.stdout);
    const g = await cluster.createGroup(A, 'lg', [b.name]);
    const group = await cluster.cli(['group', g]);
    assert.equal(group.code, 0, group.stderr);
    assert.match(group.stdout, /2 member\(s\)/, group.stdout);
    assert.match(group.stdout, new RegExp(`${b.name} +online`), group.stdout);
});

cluster.test('offline delivery: a text to a user not connected is pushed after her hello', async () => {
    await cluster.waitRouted(cluster.router.proc);
    const [a, b] = await usersApart(['oa', 'ob']);
    const A = await Client.connect(GW1(), a.token);
    const c = cid();
    const ack = await sendReliably(A, { kind: 'text', to: b.name, data: 'while you were away', cid: c });
    const B = await Client.connect(GW2(), b.token);
    const t = await B.next((f) => f.kind === 'text' && f.cid === c);
    assert.equal(t.id, ack.id, brief(t));
    assert.equal(t.data, 'while you were away');
});

cluster.test('a group of three users on three masters: a message reaches the two others on both gateways', async () => {
    await cluster.waitRouted(cluster.router.proc);
    const [a, b, c] = await usersApart(['ga', 'gb', 'gc']);
    const A = await Client.connect(GW1(), a.token);
    const B = await Client.connect(GW2(), b.token);
    const C = await Client.connect(GW1(), c.token);
    const g = await cluster.createGroup(A, 'cg', [b.name, c.name]);
    const k = cid();
    const ack = await sendReliably(A, { kind: 'text', to: g, data: 'hello group', cid: k });
    for (const X of [B, C]) {
        const t = await X.next((f) => f.kind === 'text' && f.cid === k);
        assert.equal(t.id, ack.id, brief(t));
        assert.equal(t.to, g);
    }
});

cluster.test('a gateway restart (SIGKILL): it comes back on the cluster, its users reconnect and sync what was sent meanwhile', async () => {
    await cluster.waitRouted(cluster.router.proc);
    const [a, b] = await usersApart(['ra', 'rb']);
    const A = await Client.connect(GW1(), a.token);
    let B = await Client.connect(GW2(), b.token);
    const c1 = cid();
    await sendReliably(A, { kind: 'text', to: b.name, data: 'before', cid: c1 });
    const seen = await B.next((f) => f.kind === 'text' && f.cid === c1);
    const epoch = B.hello.epoch;
    await cluster.killGateway(1, 'SIGKILL');
    const c2 = cid();
    const ack2 = await sendReliably(A, { kind: 'text', to: b.name, data: 'while gw2 was down', cid: c2 });
    await cluster.startGateway({ index: 1 });
    assert.equal(await healthz(GW2()), 200);
    B = await Client.connect(GW2(), b.token);
    B.send({ kind: 'sync', after: seen.seq, epoch });
    const t = await B.next((f) => f.kind === 'text' && f.cid === c2);
    assert.equal(t.id, ack2.id, brief(t));
    const end = await B.next({ kind: 'sync' });
    assert.equal(end.recovered, true, brief(end));
    const c3 = cid();
    await sendReliably(A, { kind: 'text', to: b.name, data: 'after', cid: c3 });
    await B.next((f) => f.kind === 'text' && f.cid === c3);
});

cluster.test('more frames across masters: history, read (receipt to the other side), typing, block', async () => {
    await cluster.waitRouted(cluster.router.proc);
    const [a, b] = await usersApart(['fa', 'fb']);
    const A = await Client.connect(GW1(), a.token);
    const B = await Client.connect(GW2(), b.token);
    const acks = [];
    for (let i = 0; i < 3; i++) {
        const c = cid();
        acks.push(await sendReliably(A, { kind: 'text', to: b.name, data: `h${i}`, cid: c }));
        await B.next((f) => f.kind === 'text' && f.cid === c);
    }
    B.send({ kind: 'history', with: a.name });
    const h = await B.next({ kind: 'history' });
    assert.deepEqual(
        h.messages.map((m) => m.id),
        acks.map((x) => x.id),
        brief(h),
    );
    B.send({ kind: 'read', with: a.name, upto: acks[2].id });
    const rr = await A.next({ kind: 'read' });
    assert.equal(rr.from, b.name, brief(rr));
    assert.equal(rr.upto, acks[2].id, brief(rr));
    B.send({ kind: 'typing', to: a.name });
    assert.equal((await A.next({ kind: 'typing' })).from, b.name);
    B.send({ kind: 'block', user: a.name, on: true });
    assert.equal((await B.next({ kind: 'block' })).on, true);
    const c = cid();
    A.send({ kind: 'text', to: b.name, data: 'blocked?', cid: c });
    const answer = await A.next((f) => (f.kind === 'ack' || f.kind === 'error') && f.cid === c);
    await B.expectNone((f) => f.kind === 'text' && f.cid === c, 500, `a text through a block (A got ${brief(answer)})`);
});

cluster.test(
    'a master SIGKILLed (its replica promoted): the link follows, texts to the user whose keys it held go through again',
    { timeout: 90000 },
    async () => {
        await cluster.waitRouted(cluster.router.proc);
        const [a, b] = await usersApart(['ka', 'kb']);
        const A = await Client.connect(GW1(), a.token);
        const B = await Client.connect(GW2(), b.token);
        const c1 = cid();
        await sendReliably(A, { kind: 'text', to: b.name, data: 'before the failover', cid: c1 });
        await B.next((f) => f.kind === 'text' && f.cid === c1);
        const slot = Number(await cluster.redis('CLUSTER', 'KEYSLOT', `parley:{u:${b.name}}:meta`));
        const { killed, promoted } = await cluster.rc.failSlotMaster(slot);
        assert.notEqual(promoted.port, killed.port);
        // the gateways and the router come back on the new map (they may have dropped their slots
        // and sessions meanwhile: clients reconnect and retry, as the protocol says)
        for (let i = 0; i < 2; i++) await cluster.waitHealthy(i, 30000);
        await cluster.waitRouted(cluster.router.proc, 30000);
        const A2 = A.isOpen ? A : await Client.connect(GW1(), a.token);
        const B2 = B.isOpen ? B : await Client.connect(GW2(), b.token);
        const c2 = cid();
        const ack = await sendReliably(A2, { kind: 'text', to: b.name, data: 'after the failover', cid: c2 }, { timeoutMs: 30000 });
        const got = await B2.next((f) => f.kind === 'text' && f.cid === c2, 15000).catch(async () => {
            // B's session may have been re-opened: what she missed is in her sync
            const B3 = await Client.connect(GW2(), b.token);
            return B3.next((f) => f.kind === 'text' && f.cid === c2);
        });
        assert.equal(got.id, ack.id, brief(got));
        assert.equal(await masterPortOf(`parley:{u:${b.name}}:meta`), promoted.port);
    },
);

cluster.test(
    "every node stopped for twice the heartbeat TTL (SIGSTOP, SIGCONT): the gateways' links drop the hung connections (the reply timeout), which come up again",
    { timeout: 90000 },
    async () => {
        await cluster.waitRouted(cluster.router.proc);
        const nodes = cluster.rc.nodes.filter((n) => n.proc.running);
        const marks = cluster.gateways.map((g) => g.proc.log.length);
        for (const n of nodes) n.proc.child.kill('SIGSTOP');
        try {
            await waitFor(() => cluster.gateways.every((g, i) => /no reply for \d+ ms while commands wait/.test(g.proc.log.slice(marks[i]))), {
                timeout: 15000,
                what: "every gateway's link dropping a hung master connection",
            });
        } finally {
            for (const n of nodes) n.proc.child.kill('SIGCONT');
        }
        await cluster.rc.waitOk(30000);
        for (let i = 0; i < 2; i++) await cluster.waitHealthy(i, 30000);
        await cluster.waitRouted(cluster.router.proc, 30000);
        const [a, b] = await usersApart(['sa', 'sb']);
        const A = await Client.connect(GW1(), a.token);
        const B = await Client.connect(GW2(), b.token);
        const c = cid();
        const ack = await sendReliably(A, { kind: 'text', to: b.name, data: 'after the stall', cid: c }, { timeoutMs: 30000 });
        const t = await B.next((f) => f.kind === 'text' && f.cid === c, 15000);
        assert.equal(t.id, ack.id, brief(t));
    },
);
