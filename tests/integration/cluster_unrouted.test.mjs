// A text published while no router holds its routing slot, on a Redis Cluster (issue 15,
// tester15a F1 point 3). A classic PUBLISH's count is the subscribers of the node that took it,
// so on a cluster the gateway (gateway/rtq.c) cannot take 0 as "nobody": it checks the slot's
// lease (EXISTS parley:slot:N through the cluster link) and answers `unavailable` with the cid
// when nobody holds it, instead of leaving the text neither stored nor refused.
// Always a 3-master cluster (opts.redis), whatever PARLEY_TEST_REDIS says.
// Cluster: 3 Redis masters, router, gw1, gw2.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Client, brief, sendAck } from './lib/client.mjs';
import { Cluster, SLOTS, waitFor } from './lib/cluster.mjs';

const ANSWER_MS = 5000; // the bound on the refusal's answer

const cluster = new Cluster('cluster_unrouted', { redis: 'cluster3' });
before(() => cluster.start());
after(() => cluster.stop());

// how many of the routing slots' leases (parley:slot:N) exist now
async function leases() {
    let n = 0;
    for (let s = 0; s < SLOTS; s++) n += Number(await cluster.redis('EXISTS', `parley:slot:${s}`));
    return n;
}

cluster.test(
    'no router holds the slot (the router killed, its leases expired): a text is refused unavailable with its cid, on either gateway; stored once a router is back',
    async () => {
        const [a, b] = await cluster.users(['ua', 'ub']);
        const A0 = await Client.connect(cluster.gw(0), a.token, { name: 'A0' });
        const A1 = await Client.connect(cluster.gw(1), a.token, { name: 'A1' });
        await sendAck(A0, b.name, 'routed', 'ur-0');

        await cluster.killRouter('SIGKILL');
        await waitFor(async () => (await leases()) === 0, { timeout: 10000, what: 'every slot lease expired' });
        for (const [i, A] of [A0, A1].entries()) {
            const cid = `ur-x${i}`;
            const t0 = performance.now();
            A.send({ kind: 'text', to: b.name, data: `nobody routes this ${i}`, cid });
            const r = await A.next((x) => (x.kind === 'ack' || x.kind === 'error') && x.cid === cid, ANSWER_MS);
            assert.equal(r.kind, 'error', `gw${i}: ${brief(r)}`);
            assert.equal(r.code, 'unavailable', brief(r));
            console.log(`gw${i}: refused ${r.code} after ${(performance.now() - t0).toFixed(0)} ms`);
        }

        // a router again: the same cid is stored (the client's retry, as protocol.md says)
        await cluster.startRouter();
        const ack = await sendAck(A0, b.name, 'nobody routes this 0', 'ur-x0');
        assert.ok(ack.id > 0, brief(ack));
    },
);
