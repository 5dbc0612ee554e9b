// A master away on a 3-master Redis Cluster takes down only its slots (issue 15): gateways and
// a router on a redis-cluster:// URL keep serving the users whose keys are on the other masters
// while one master is dead (its replica held back from failing over), answer `unavailable` at
// once to a text whose keys are on the dead one, stay ready (/healthz 200), and after the replica
// is promoted serve everyone again with every acked text delivered once. Then a master frozen
// with SIGSTOP (socket open, no answers): the cluster link's reply timeout drops its connections
// (a log line in the gateway and the router, not TCP keepalive), its replica is promoted, and a
// text on its slots is acked again within seconds.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, healthz, sendReliably } from './lib/client.mjs';
import { Cluster, redisCommand, waitFor } from './lib/cluster.mjs';

const cluster = new Cluster('cluster_outage', { redis: 'cluster3', replicas: 1, gateways: 2 });
before(() => cluster.start());
after(() => cluster.stop());

let cidN = 0;
const cid = (p = 'o') => `${p}-${++cidN}`;
const slotOf = async (key) => Number(await cluster.rc.command(cluster.rc.nodes.find((n) => n.proc.running).port, 'CLUSTER', 'KEYSLOT', key));
const inboxKey = (u) => `parley:{u:${u}}:inbox`;
const convKey = (a, b) => `parley:{c:${Buffer.compare(Buffer.from(a), Buffer.from(b)) < 0 ? `${a}|${b}` : `${b}|${a}`}}:history`;

// the masters now, and which of them has a Parley subscriber connection (CLIENT LIST)
async function masters() {
    const out = [];
    for (const node of cluster.rc.nodes) {
        if (!node.proc.running) continue;
        if ((await redisCommand(node.port, ['ROLE']))[0] !== 'master') continue;
        const clients = await cluster.rc.command(node.port, 'CLIENT', 'LIST');
        out.push({ node, subscribers: (clients.match(/name=parley-\S+:subscriber/g) || []).length });
    }
    return out;
}

// the replica of master m (by ROLE of the others)
async function replicaOf(m) {
    for (const node of cluster.rc.nodes) {
        if (!node.proc.running || node === m) continue;
        const role = await redisCommand(node.port, ['ROLE']);
        if (role[0] === 'slave' && Number(role[2]) === m.port) return node;
    }
    throw new Error(`no replica of :${m.port}`);
}

// the node (a master) of a key, by CLUSTER SLOTS
async function nodeOf(key) {
    return cluster.rc.masterOf(await slotOf(key));
}

// users registered until `want` returns what it needs from {name, token, node} of each
async function pickUsers(want, base, max = 40) {
    const got = [];
    for (let i = 0; i < max; i++) {
        const [u] = await cluster.users([base]);
        u.node = await nodeOf(inboxKey(u.name));
        got.push(u);
        const r = await want(got);
        if (r) return r;
    }
    throw new Error(`no users fit in ${max}`);
}

// every acked text of `sent` ({id}) reached `to`'s client exactly once
function deliveredOnce(to, sent) {
    for (const a of sent) {
        const n = to.frames.filter((f) => f.kind === 'text' && f.id === a.id).length;
        assert.equal(n, 1, `text ${a.id} delivered ${n} times to ${to.name}`);
    }
}

cluster.test(
    'one master dead (its replica held back): the other masters\u2019 users go on, its own get unavailable, then after the promotion everything works and nothing acked is lost',
    async () => {
        // the victim: a master without a Parley subscriber on it (a subscriber that moves is the
        // cluster link's test), and its replica told not to fail over until we say so
        // as deploy/docker/redis-cluster.conf: a slot without a master takes only itself down
        // (Redis's default, yes, makes every node answer CLUSTERDOWN once the dead master is
        // marked failed, whatever the clients do)
        for (const node of cluster.rc.nodes.filter((n) => n.proc.running))
            await cluster.rc.command(node.port, 'CONFIG', 'SET', 'cluster-require-full-coverage', 'no');
        const victim = (await masters()).find((m) => m.subscribers === 0).node;
        const replica = await replicaOf(victim);
        await cluster.rc.command(replica.port, 'CONFIG', 'SET', 'cluster-replica-no-failover', 'yes');
        // c on the victim; a and b with their inboxes and their conversation on the others
        const { a, b, c } = await pickUsers(async (us) => {
            const c = us.find((u) => u.node === victim);
            const live = us.filter((u) => u.node !== victim);
            for (const a of live) for (const b of live) if (a !== b && c && (await nodeOf(convKey(a.name, b.name))) !== victim) return { a, b, c };
            return null;
        }, 'ou');
        const A = await Client.connect(cluster.gw(0), a.token);
        const B = await Client.connect(cluster.gw(1), b.token);
        const C = await Client.connect(cluster.gw(0), c.token);
        const acked = { ab: [], ba: [], ca: [] };
        acked.ab.push(await sendReliably(A, { kind: 'text', to: b.name, data: 'before', cid: cid() }));
        acked.ca.push(await sendReliably(C, { kind: 'text', to: a.name, data: 'c before', cid: cid() }));

        await victim.proc.signal('SIGKILL');
        // c's text: unavailable, at once (its inbox's master is gone; nothing waits for it)
        await waitFor(
            async () => {
                const k = cid('c');
                C.send({ kind: 'text', to: a.name, data: 'c during', cid: k });
                const f = await C.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === k, 8000);
                if (f.kind === 'ack') acked.ca.push(f); // sent before the link noticed
                return f.kind === 'error' && f.code === 'unavailable';
            },
            { timeout: 10000, what: 'a text on the dead master answered unavailable' },
        );
        const t0 = Date.now();
        const k = cid('c');
        C.send({ kind: 'text', to: a.name, data: 'c during', cid: k });
        const f = await C.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === k);
        assert.equal(f.code, 'unavailable', brief(f));
        assert.ok(Date.now() - t0 < 1000, `answered in ${Date.now() - t0} ms`);
        // a and b: texts both ways, acked and received, while the master stays dead (3 s and more)
        const outage = Date.now();
        for (let i = 0; i < 10; i++) {
            const ab = await sendReliably(A, { kind: 'text', to: b.name, data: `ab ${i}`, cid: cid() }, { timeoutMs: 8000 });
            const ba = await sendReliably(B, { kind: 'text', to: a.name, data: `ba ${i}`, cid: cid() }, { timeoutMs: 8000 });
            acked.ab.push(ab);
            acked.ba.push(ba);
            await B.next((x) => x.kind === 'text' && x.id === ab.id);
            await A.next((x) => x.kind === 'text' && x.id === ba.id);
            await new Promise((r) => setTimeout(r, 300));
        }
        assert.ok(!(await masters()).some((m) => m.node === victim), 'the victim stayed dead');
        assert.ok((await cluster.rc.command(replica.port, 'ROLE'))[0] === 'slave', 'its replica was not promoted meanwhile');
        assert.ok(Date.now() - outage >= 3000);
        for (const g of [0, 1]) assert.equal(await healthz(cluster.gw(g)), 200, `gw${g + 1} stays ready`);

        // the replica takes over: c is served again, and nothing acked was lost
        assert.equal(await cluster.rc.command(replica.port, 'CLUSTER', 'FAILOVER', 'TAKEOVER'), 'OK');
        await cluster.rc.waitOk();
        acked.ca.push(await sendReliably(C, { kind: 'text', to: a.name, data: 'c after', cid: cid() }, { timeoutMs: 20000 }));
        acked.ab.push(await sendReliably(A, { kind: 'text', to: b.name, data: 'after', cid: cid() }, { timeoutMs: 20000 }));
        await B.next((x) => x.kind === 'text' && x.id === acked.ab.at(-1).id, 10000);
        await A.next((x) => x.kind === 'text' && x.id === acked.ca.at(-1).id, 10000);
        deliveredOnce(B, acked.ab);
        deliveredOnce(A, acked.ba);
        // c's: acked ones in a's history (a session may have been re-opened meanwhile: the inbox is
        // the record); c's inbox has them too
        const hist = await cluster.redis('ZRANGE', convKey(a.name, c.name), '0', '-1', 'WITHSCORES');
        const ids = new Set(hist.filter((_, i) => i % 2).map(Number));
        for (const x of acked.ca) assert.ok(ids.has(x.id), `c's acked text ${x.id} stored`);
        for (const g of [0, 1]) assert.equal(await healthz(cluster.gw(g)), 200);
    },
);

cluster.test(
    'a master frozen (SIGSTOP): the reply timeout drops its connections, its replica is promoted, its users are served again within seconds',
    async () => {
        let frozen = null;
        for (const m of await masters())
            if (m.subscribers === 0 && !frozen)
                frozen = await replicaOf(m.node).then(
                    () => m.node,
                    () => null,
                );
        assert.ok(frozen, 'a master with a replica and without a Parley subscriber');
        const { a, d } = await pickUsers(async (us) => {
            const d = us.find((u) => u.node === frozen);
            const a = us.find((u) => u.node !== frozen);
            return d && a ? { a, d } : null;
        }, 'fz');
        const A = await Client.connect(cluster.gw(0), a.token);
        const D = await Client.connect(cluster.gw(1), d.token);
        await sendReliably(D, { kind: 'text', to: a.name, data: 'before', cid: cid('f') });
        const marks = cluster.procs.filter((p) => /^(gw|router)/.test(p.name)).map((p) => [p, p.log.length]);
        await frozen.proc.signal('SIGSTOP', { wait: false });
        const t0 = Date.now();
        try {
            // d's texts wait on the frozen master, then: the link drops it after the timeout (5 s),
            // the cluster promotes its replica (--cluster-node-timeout 2000), d is served again
            const ack = await sendReliably(D, { kind: 'text', to: a.name, data: 'during', cid: cid('f') }, { timeoutMs: 25000 });
            const took = Date.now() - t0;
            await A.next((x) => x.kind === 'text' && x.id === ack.id, 10000);
            const dropped = marks.filter(([p, at]) => /no reply for \d+ ms while commands wait/.test(p.log.slice(at))).map(([p]) => p.name);
            assert.ok(dropped.length >= 1, 'a process dropped the frozen master by the reply timeout');
            assert.ok(took < 20000, `served again after ${took} ms (TCP keepalive never notices a stopped process: its kernel answers)`);
            for (const g of [0, 1]) assert.equal(await healthz(cluster.gw(g)), 200);
        } finally {
            frozen.proc.child?.kill('SIGCONT');
        }
    },
);

cluster.test(
    'the master holding the subscribers frozen (SIGSTOP): the subscriber probe moves them, 1:1 texts of users on the other masters are delivered again within seconds',
    async () => {
        await cluster.rc.waitOk();
        let frozen = null;
        for (const m of await masters())
            if (m.subscribers > 0 && !frozen)
                frozen = await replicaOf(m.node).then(
                    () => m.node,
                    () => null,
                );
        assert.ok(frozen, 'a master with a replica and Parley subscribers');
        const { a, b } = await pickUsers(async (us) => {
            const live = us.filter((u) => u.node !== frozen);
            for (const a of live) for (const b of live) if (a !== b && (await nodeOf(convKey(a.name, b.name))) !== frozen) return { a, b };
            return null;
        }, 'sp');
        const A = await Client.connect(cluster.gw(0), a.token);
        const B = await Client.connect(cluster.gw(1), b.token);
        const first = await sendReliably(A, { kind: 'text', to: b.name, data: 'before', cid: cid('s') });
        await B.next((x) => x.kind === 'text' && x.id === first.id);
        const marks = cluster.procs.filter((p) => /^(gw|router)/.test(p.name)).map((p) => [p, p.log.length]);
        await frozen.proc.signal('SIGSTOP', { wait: false });
        const t0 = Date.now();
        try {
            // the acks and the deliveries come through the subscribers: once they moved off the
            // frozen node (and the router took its slots again), texts go through
            const ack = await sendReliably(A, { kind: 'text', to: b.name, data: 'during', cid: cid('s') }, { timeoutMs: 25000 });
            await B.next((x) => x.kind === 'text' && x.id === ack.id, 10000);
            const took = Date.now() - t0;
            const moved = marks.filter(([p, at]) => /its probe message did not come within \d+ ms/.test(p.log.slice(at))).map(([p]) => p.name);
            assert.ok(moved.length >= 1, 'a subscriber dropped by its probe');
            assert.ok(took < 20000, `delivered again after ${took} ms`);
        } finally {
            frozen.proc.child?.kill('SIGCONT');
        }
    },
);
