// A planned failover (docs/deploy.md "Failing over": `CLUSTER FAILOVER` on a replica, to upgrade
// or move its master) on a local cluster of 3 masters with a replica each (lib/rcluster.mjs),
// under a stream of texts, with the routers' --wait-replicas 0 and then 1: every text acked once
// with one id, delivered once, in id order; the replica is master and the old master its replica.
// Printed, not bounds (the machine may be loaded): the pause clients see, the texts retried and
// those stored after a text sent later.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, sendStream } from './lib/client.mjs';
import { Cluster, redisCommand, waitFor } from './lib/cluster.mjs';

// the senders' budgets lifted: a retry after a stop takes the budget again (docs/internals.md)
const BUDGETS = ['--user-rate', '0', '--user-fanout-rate', '0', '--user-byte-rate', '0'];
const cl = new Cluster('cluster_failover_planned', { redis: 'cluster3', replicas: 1, routerArgs: BUDGETS });
before(() => cl.start());
after(() => cl.stop());

// the replica of the master on port
async function replicaOf(port) {
    for (const n of cl.rc.nodes) {
        const role = await redisCommand(n.port, ['ROLE']).catch(() => null);
        if (role && role[0] === 'slave' && Number(role[2]) === port) return n;
    }
    return null;
}

for (const wait of [0, 1]) {
    cl.test(
        `CLUSTER FAILOVER on the recipient's master's replica under a stream, --wait-replicas ${wait}: nothing lost, doubled or reordered`,
        { timeout: 90000 },
        async () => {
            if (wait) {
                // the router again with --wait-replicas 1 (each replica follows its master)
                await cl.router.proc.stop();
                await cl.startRouter({ args: ['--wait-replicas', '1'] });
            }
            const [a, b] = await cl.users(['pa', 'pb']);
            const A = await Client.connect(cl.gw(0), a.token);
            const B = await Client.connect(cl.gw(1), b.token);
            const slot = Number(await cl.redis('CLUSTER', 'KEYSLOT', `parley:{u:${b.name}}:inbox`));
            const master = await cl.rc.masterOf(slot);
            let replica = null;
            await waitFor(async () => (replica = await replicaOf(master.port)) !== null, { what: `a replica of :${master.port}` });
            let tookOver = 0;
            const res = await sendStream(A, b.name, 300, {
                prefix: `pf${wait}`,
                paceMs: 25,
                timeoutMs: 60000,
                beforeSend: async (i) => {
                    if (i !== 100) return;
                    const t0 = Date.now();
                    const out = await cl.rc.cli(['-p', String(replica.port), 'CLUSTER', 'FAILOVER']);
                    assert.equal(out.stdout.trim(), 'OK', `CLUSTER FAILOVER: ${out.stdout} ${out.stderr}`);
                    await waitFor(async () => (await redisCommand(replica.port, ['ROLE']))[0] === 'master', { timeout: 20000, what: 'the replica promoted' });
                    tookOver = Date.now() - t0;
                },
            });
            assert.deepEqual(res.problems, [], 'no refusal, no cid acked with two ids');
            await waitFor(() => res.msgs.every((m) => B.all({ kind: 'text', cid: m.cid }).length >= 1), { timeout: 20000, what: 'every text delivered' });
            await B.expectNone((f) => f.kind === 'text' && B.all({ kind: 'text', cid: f.cid }).length > 1, 300, 'a text delivered twice');
            const got = B.all({ kind: 'text' });
            const ids = got.map((t) => t.id);
            assert.deepEqual(
                ids,
                [...ids].sort((x, y) => x - y),
                'delivered in id order',
            );
            assert.deepEqual(got.map((t) => t.cid).sort(), res.msgs.map((m) => m.cid).sort(), 'each text once');
            // counted, not failed: a text sent in the instant the links dropped (the router lets go
            // of its routing slots while the map changes) gets no answer, is retried by the client
            // after its ack timeout and stored after later ones (docs/deploy.md "Failing over")
            const index = new Map(res.msgs.map((m, i) => [m.cid, i]));
            let late = 0;
            let highest = -1;
            for (const t of got) {
                const i = index.get(t.cid);
                if (i < highest) late++;
                highest = Math.max(highest, i);
            }
            await waitFor(async () => (await redisCommand(master.port, ['ROLE']))[0] === 'slave', { what: 'the old master a replica' });
            let gap = 0;
            for (let i = 1; i < got.length; i++) gap = Math.max(gap, got[i].__at - got[i - 1].__at);
            console.log(
                `# planned failover, --wait-replicas ${wait}: promoted ${tookOver} ms after the command; longest pause between deliveries ${gap} ms; ` +
                    `${res.msgs.filter((m) => m.tries > 1).length} of 300 texts retried (${res.timeouts} ack timeouts, ${res.unavailable} unavailable answers), ${late} stored after a text sent later`,
            );
        },
    );
}
