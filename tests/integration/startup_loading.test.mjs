// Start-up while Redis loads its data: a Redis restarted on a big dataset
// answers -LOADING to most commands for a second or more. A gateway and a
// router started in that window must retry on their own (gateway/README.md
// "Redis", router/README.md) and become ready once loading ends: /healthz
// 200, every slot claimed, a message acked and delivered. A gateway already
// running when Redis restarts goes through the same reconnect. The CLI
// answers one line and a non-zero exit meanwhile.
//
// The window is made with DEBUG POPULATE (then BGREWRITEAOF, so the keys are
// in the AOF's RDB base) and checked twice: INFO persistence says loading:1
// after the restart, and each process's log shows the -LOADING it met. A
// machine that loads the keys before the processes meet it skips the test
// with a message saying so.
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { Client, sendReliably } from './lib/client.mjs';
import { Cluster, redisCommand, waitFor } from './lib/cluster.mjs';

const KEYS = 2000000; // ~1.5 s of loading on the development machine
const cluster = new Cluster('startup_loading', { gateways: 2, redisArgs: ['--enable-debug-command', 'yes'] });

async function persistence() {
    const info = await redisCommand(cluster.redisPort, ['INFO', 'persistence']);
    return Object.fromEntries(
        info
            .split('\r\n')
            .filter((l) => l.includes(':'))
            .map((l) => l.split(':')),
    );
}

before(async () => {
    await cluster.start();
    // the big dataset, written into the AOF's base so a restart loads it
    await redisCommand(cluster.redisPort, ['DEBUG', 'POPULATE', String(KEYS), 'filler'], { timeout: 30000 });
    await cluster.redis('BGREWRITEAOF');
    await waitFor(
        async () => {
            const p = await persistence();
            return p.aof_rewrite_in_progress === '0' && p.aof_rewrite_scheduled === '0' && p.aof_last_bgrewrite_status === 'ok';
        },
        { timeout: 30000, interval: 100, what: 'BGREWRITEAOF of the big dataset done' },
    );
});
after(() => cluster.stop());

// Restarts Redis and resolves as soon as it answers (while it loads), with
// whether INFO said loading:1 then and the time the restart took.
async function restartRedisLoading() {
    const ex = await cluster.stopRedis('SIGTERM');
    assert.equal(ex.code, 0, `redis-server exit after SIGTERM: ${JSON.stringify(ex)}`);
    const t0 = Date.now();
    await cluster.startRedis({ loading: true });
    return { loading: (await persistence()).loading === '1', t0 };
}

// Whether the log text since `mark` shows a -LOADING reply.
const sawLoading = (proc, mark) => proc.log.slice(mark).includes('LOADING');

cluster.test(
    'gateway and router started while Redis loads its data become ready by themselves: healthz 200, slots claimed, a message acked and delivered',
    async (t) => {
        const [a, b] = await cluster.users(['a', 'b']);
        // the first gateway and the router start during the load; the second keeps running and reconnects
        await cluster.router.proc.stop();
        const gw1 = cluster.gateways[0];
        await gw1.proc.stop();

        const { loading, t0 } = await restartRedisLoading();
        const gwMark = gw1.proc.log.length;
        const gwReady = cluster.startGateway({ index: 0 }); // spawns now, resolves on /healthz 200
        gwReady.catch(() => {}); // awaited below
        const router = await cluster.startRouter({ waitSlots: false });
        if (!loading) {
            await gwReady;
            await cluster.waitRouted(router.proc);
            t.skip(`Redis loaded ${KEYS} keys before it answered INFO (${Date.now() - t0} ms): this machine loads too fast for the test`);
            return;
        }
        // both met -LOADING (each logs the refused step), or the load ended first
        let loadedAt = 0;
        await waitFor(
            async () => {
                if (sawLoading(gw1.proc, gwMark) && sawLoading(router.proc, 0)) return true;
                if ((await persistence()).loading === '0') {
                    loadedAt = Date.now();
                    return true;
                }
                return false;
            },
            { timeout: 20000, interval: 20, what: 'the gateway and the router meeting -LOADING, or the load ending' },
        );
        if (!sawLoading(gw1.proc, gwMark) || !sawLoading(router.proc, 0)) {
            await gwReady;
            await cluster.waitRouted(router.proc);
            t.skip(
                `Redis loaded ${KEYS} keys in ${loadedAt - t0} ms, before the gateway and the router met -LOADING: this machine loads too fast for the test`,
            );
            return;
        }

        // ready by themselves once loading ends
        await gwReady;
        await cluster.waitHealthy(1); // the gateway that kept running reconnected
        await cluster.waitRouted(router.proc);
        assert.equal((await persistence()).loading, '0', 'ready only after Redis loaded its data');
        assert.ok((await cluster.redis('DBSIZE')) >= KEYS, 'the dataset was loaded');

        const A = await Client.connect(cluster.gw(0), a.token, { name: 'A@gw1' });
        const B = await Client.connect(cluster.gw(1), b.token, { name: 'B@gw2' });
        const ack = await sendReliably(A, { kind: 'text', to: b.name, data: 'after loading', cid: 'loading-1' });
        const got = await B.next({ kind: 'text', id: ack.id });
        assert.equal(got.data, 'after loading');
        const back = await sendReliably(B, { kind: 'text', to: a.name, data: 'reply', cid: 'loading-2' });
        await A.next({ kind: 'text', id: back.id });
    },
);

cluster.test('the CLI while Redis loads its data: one line naming LOADING, exit status not 0', async (t) => {
    const { loading, t0 } = await restartRedisLoading();
    const r = await cluster.cli(['online']);
    const still = (await persistence()).loading === '1';
    if (!loading || !still) {
        t.skip(`Redis loaded ${KEYS} keys within ${Date.now() - t0} ms, before the CLI ran: this machine loads too fast for the test`);
    } else {
        assert.equal(r.ok, false, `exit status: ${JSON.stringify(r)}`);
        assert.match(r.stderr, /^parley: redis at .*LOADING/, `stderr: ${r.stderr}`);
        assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
        assert.equal(r.stdout, '', 'nothing on stdout');
    }
    // the stack is whole again for whatever runs next
    await waitFor(async () => (await persistence()).loading === '0', { timeout: 20000, interval: 100, what: 'loading done' });
    const after = await cluster.cli(['online']);
    assert.equal(after.ok, true, `the CLI works once loaded: ${JSON.stringify(after)}`);
    for (let i = 0; i < cluster.gateways.length; i++) await cluster.waitHealthy(i);
    await cluster.waitRouted(cluster.router.proc);
});

cluster.test(
    'gateway and router started while Redis does not answer (SIGSTOP) drop the unanswered connection after 5 s, retry, and become ready after SIGCONT',
    async () => {
        const [a, b] = await cluster.users(['a', 'b']);
        await cluster.router.proc.stop();
        const gw1 = cluster.gateways[0];
        await gw1.proc.stop();
        const gwMark = gw1.proc.log.length;
        const redis = cluster.redisProc.child;
        let gwReady;
        let router;
        redis.kill('SIGSTOP'); // TCP connects (the kernel's backlog), nothing answers
        try {
            gwReady = cluster.startGateway({ index: 0 });
            gwReady.catch(() => {}); // awaited below
            router = await cluster.startRouter({ waitSlots: false });
            await waitFor(
                () =>
                    /commands connection: no answer within 5000 ms/.test(gw1.proc.log.slice(gwMark)) &&
                    /no answer to the connect sequence/.test(router.proc.log),
                {
                    timeout: 12000,
                    what: 'the gateway and the router giving up on their unanswered connections',
                },
            );
        } finally {
            redis.kill('SIGCONT');
        }
        await gwReady;
        await cluster.waitHealthy(1);
        await cluster.waitRouted(router.proc);
        const A = await Client.connect(cluster.gw(0), a.token, { name: 'A@gw1' });
        const B = await Client.connect(cluster.gw(1), b.token, { name: 'B@gw2' });
        const ack = await sendReliably(A, { kind: 'text', to: b.name, data: 'after SIGCONT', cid: 'stop-1' });
        assert.equal((await B.next({ kind: 'text', id: ack.id })).data, 'after SIGCONT');
    },
);
