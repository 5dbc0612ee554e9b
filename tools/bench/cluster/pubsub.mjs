// tools/bench/cluster/pubsub.mjs - classic PUBLISH against sharded SPUBLISH on
// a local 3-master Redis Cluster (tests/integration/lib/rcluster.mjs): the
// throughput redis-benchmark gets from one node (20 clients, pipeline 16,
// 200-byte payload, N messages) and the CPU every node spent (INFO cpu), per
// message. For issue 15's choice of pub/sub (docs/benchmarks.md "Redis
// Cluster: pub/sub"). Run: node tools/bench/cluster/pubsub.mjs (N=300000).
import { spawnSync } from 'node:child_process';
import { RedisCluster } from '../../../tests/integration/lib/rcluster.mjs';
import { redisCommand } from '../../../tests/integration/lib/cluster.mjs';

const N = Number(process.env.N || 300000);
const payload = 'x'.repeat(200);
async function cpu(port) {
    const info = await redisCommand(port, ['INFO', 'cpu']);
    const g = (k) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)[1]);
    return g('used_cpu_sys') + g('used_cpu_user');
}
function bench(port, cmd) {
    const r = spawnSync('redis-benchmark', ['-p', String(port), '-n', String(N), '-c', '20', '-P', '16', '-q', ...cmd], { encoding: 'utf8' });
    return /([0-9.]+) requests per second/.exec(r.stdout)?.[1];
}
async function run(label, ports, port, cmd) {
    const before = await Promise.all(ports.map(cpu));
    const t = Date.now();
    const rps = bench(port, cmd);
    const secs = (Date.now() - t) / 1000;
    const after = await Promise.all(ports.map(cpu));
    const used = after.map((a, i) => (a - before[i]).toFixed(2));
    const perMsg = after.reduce((s, a, i) => s + a - before[i], 0) / N * 1e6;
    console.log(`${label}: ${rps} msg/s (${secs.toFixed(1)} s), node CPU s [${used}], total ${perMsg.toFixed(2)} µs CPU per message`);
}
const rc = new RedisCluster('pubsub-bench', { masters: 3 });
await rc.start();
const ports = rc.nodes.map((n) => n.port);
// no subscribers: a cluster relays every PUBLISH to every node over its bus anyway
for (let i = 0; i < 3; i++) {
    await run('cluster PUBLISH  ', ports, ports[0], ['PUBLISH', 'parley:gw:gw1', payload]);
    // a shard channel whose slot is on ports[0]
    const slots = await rc.slots(ports[0]);
    let ch = null;
    for (let k = 0; k < 1000 && !ch; k++) {
        const c = `parley:gw:{${k}}`;
        const s = Number(await redisCommand(ports[0], ['CLUSTER', 'KEYSLOT', c]));
        if (slots.find(([a, b, p]) => s >= a && s <= b && p === ports[0])) ch = c;
    }
    await run('cluster SPUBLISH ', ports, ports[0], ['SPUBLISH', ch, payload]);
}
await rc.stop();
