// Parley on a 3-master Redis Cluster with replicas (issue 15), reached with a
// redis-cluster:// URL: gateways and the router run on the cluster link
// (common/clink.h; gateway/redis_link.c, router/conn.c).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { Cluster, redisCommand, waitFor } from './lib/cluster.mjs';

const cluster = new Cluster('cluster_mode', { redis: 'cluster3', replicas: 1, waitSlots: false });
before(() => cluster.start());
after(() => cluster.stop());

const masters = async () => {
    const out = [];
    for (const n of cluster.rc.nodes) {
        if (!n.proc.running) continue;
        const role = await redisCommand(n.port, ['ROLE']).catch(() => null);
        if (role && role[0] === 'master') out.push(n);
    }
    return out;
};

cluster.test('the link comes up: every master has the gateways\' and the router\'s command connections, named, with every script loaded', async () => {
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
        const libs = await redisCommand(m.port, ['FUNCTION', 'LIST']);
        assert.ok(JSON.stringify(libs).includes('parley'), `:${m.port} FUNCTION LIST ${JSON.stringify(libs).slice(0, 200)}`);
    }
});
