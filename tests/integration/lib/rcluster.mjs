// A local Redis Cluster for tests: N masters (and R replicas each) as real
// redis-server processes on free ports (data ports and cluster bus ports both
// picked, --cluster-port), joined by `redis-cli --cluster create`, waited on
// until every node says cluster_state:ok and agrees on the slots.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ARTIFACTS, Proc, freePort, redisCli, redisCommand, waitFor } from './cluster.mjs';

export class RedisCluster {
    // name: the artifacts folder (tests/artifacts/NAME/); masters, replicas per master
    constructor(name, { masters = 3, replicas = 0 } = {}) {
        this.masters = masters;
        this.replicas = replicas;
        this.dir = path.join(ARTIFACTS, name);
        fs.mkdirSync(this.dir, { recursive: true });
        this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `parley-rc-${name}-`));
        this.nodes = []; // {port, busPort, proc, dir}
    }

    async start() {
        const n = this.masters * (1 + this.replicas);
        // freePort releases what it found: the same port can come twice (a data port equal to a
        // bus port made a node fail to bind), so every port is picked distinct
        const taken = new Set();
        const distinctPort = async () => {
            let p = await freePort();
            while (taken.has(p)) p = await freePort();
            taken.add(p);
            return p;
        };
        for (let i = 0; i < n; i++) {
            const node = { port: await distinctPort(), busPort: await distinctPort(), proc: new Proc(`redis-${i}`, this.dir) };
            node.dir = path.join(this.tmp, `n${i}`);
            fs.mkdirSync(node.dir);
            this.nodes.push(node);
            this.startNode(node);
        }
        for (const node of this.nodes)
            await waitFor(async () => (await redisCli(node.port, ['PING'])).stdout === 'PONG', { timeout: 10000, what: `redis :${node.port} PONG` });
        const out = await this.cli([
            '--cluster',
            'create',
            ...this.nodes.map((x) => `127.0.0.1:${x.port}`),
            '--cluster-replicas',
            String(this.replicas),
            '--cluster-yes',
        ]);
        if (out.code !== 0) throw new Error(`redis-cli --cluster create: ${out.code} ${out.stdout} ${out.stderr}`);
        await this.waitOk();
    }

    startNode(node) {
        node.proc.start('redis-server', [
            '--port',
            String(node.port),
            '--cluster-port',
            String(node.busPort),
            '--bind',
            '127.0.0.1',
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            path.join(node.dir, 'nodes.conf'),
            '--cluster-node-timeout',
            '2000',
            // as deploy/docker/redis-cluster.conf: the slots of live masters are served while
            // one master's are not (Parley's per-slot service, docs/deploy.md "Failing over")
            '--cluster-require-full-coverage',
            'no',
            '--dir',
            node.dir,
            '--appendonly',
            'yes',
            '--save',
            '',
            '--daemonize',
            'no',
            '--logfile',
            '',
        ]);
    }

    // every node: cluster_state:ok, all 16384 slots assigned, the same CLUSTER SLOTS, and every
    // replica's link to its master up
    async waitOk(timeout = 20000) {
        await waitFor(
            async () => {
                let first = null;
                for (const node of this.nodes) {
                    if (!node.proc.running) continue;
                    const info = (await redisCli(node.port, ['CLUSTER', 'INFO'])).stdout;
                    if (!/cluster_state:ok/.test(info) || !/cluster_slots_assigned:16384/.test(info)) return false;
                    // a replica counts once its link to its master is up (its first sync done)
                    const repl = (await redisCli(node.port, ['INFO', 'replication'])).stdout;
                    if (/role:slave/.test(repl) && !/master_link_status:up/.test(repl)) return false;
                    const slots = JSON.stringify(await this.slots(node.port));
                    if (first === null) first = slots;
                    else if (slots !== first) return false;
                }
                return true;
            },
            { timeout, what: 'every cluster node: cluster_state:ok, the same slots' },
        );
    }

    // CLUSTER SLOTS of one node as [[start, end, masterPort]], sorted
    async slots(port) {
        const r = await redisCommand(port, ['CLUSTER', 'SLOTS']);
        return r.map((e) => [Number(e[0]), Number(e[1]), Number(e[2][1])]).sort((a, b) => a[0] - b[0]);
    }

    // the node (from this.nodes) that is master of `slot` now, by CLUSTER SLOTS of a live node
    async masterOf(slot) {
        const live = this.nodes.find((x) => x.proc.running);
        const range = (await this.slots(live.port)).find(([a, b]) => slot >= a && slot <= b);
        return range && this.nodes.find((x) => x.port === range[2]);
    }

    // SIGKILLs the master of `slot` and waits until its replica serves the slot as master (the
    // cluster's own failover: --cluster-node-timeout 2000); resolves with {killed, promoted}
    async failSlotMaster(slot, timeout = 20000) {
        const killed = await this.masterOf(slot);
        await killed.proc.signal('SIGKILL');
        let promoted = null;
        await waitFor(
            async () => {
                const m = await this.masterOf(slot).catch(() => null);
                if (!m || m === killed) return false;
                const role = await redisCommand(m.port, ['ROLE']);
                if (role[0] !== 'master') return false;
                promoted = m;
                return true;
            },
            { timeout, what: `a replica promoted for slot ${slot}` },
        );
        return { killed, promoted };
    }

    command(port, ...args) {
        return redisCommand(port, args);
    }

    cli(args, timeout = 30000) {
        return new Promise((resolve) => {
            const child = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
            let stdout = '',
                stderr = '';
            child.stdout.on('data', (d) => (stdout += d));
            child.stderr.on('data', (d) => (stderr += d));
            const t = setTimeout(() => child.kill('SIGKILL'), timeout);
            child.on('close', (code) => {
                clearTimeout(t);
                resolve({ code, stdout, stderr });
            });
        });
    }

    async stop() {
        for (const node of this.nodes) await node.proc.stop();
        fs.rmSync(this.tmp, { recursive: true, force: true });
    }
}
