// cluster.mjs - start, stop, kill and restart the real processes of a Parley
// deployment for the integration tests: one redis-server (private port, temp
// dir, appendonly yes), parley-router(s) and parley-gateway(s).
//
// Run the suite (from the repository root):
//
//     (cd tests/integration && npm ci)     # once: ws + @msgpack/msgpack
//     node --test --test-concurrency=1 tests/integration/
//
// Environment:
//   PARLEY_BUILD_DIR   where parley-gateway, parley-router, parley live (default <repo>/build)
//   PARLEY_ARTIFACTS   where logs go (default <repo>/tests/artifacts)
//   PARLEY_TEST_LOG_LEVEL  --log-level for the Parley processes (default info)
//
// Every process writes stdout+stderr into <artifacts>/<suite>/<proc>.log. Each
// test made with cluster.test() also gets <artifacts>/<suite>/tests/<test>.log,
// holding what every process wrote while that test ran; it is printed when the
// test fails. All children are killed when the test file ends, even on a crash.
//
// Nothing here sleeps in place of a condition: every wait polls the condition
// (HTTP /healthz, redis-cli PING, PUBSUB NUMSUB, a key) with a deadline.
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { Client, brief, healthz, login, register } from './client.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BUILD_DIR = path.resolve(process.env.PARLEY_BUILD_DIR || path.join(REPO, 'build'));
export const ARTIFACTS = path.resolve(process.env.PARLEY_ARTIFACTS || path.join(REPO, 'tests/artifacts'));
export const SECRET = 'parley-integration-test-secret-0123456789';
export const LOG_LEVEL = process.env.PARLEY_TEST_LOG_LEVEL || 'info';
export const SLOTS = 64;

// Short timings so failure detection fits in a test.
export const HEARTBEAT_TTL_MS = 1500;
export const REAP_INTERVAL_MS = 300;
export const LEASE_MS = 1000;
// Every test registers its users from 127.0.0.1, far more than a real client
// address makes in --throttle-window (every register counts against
// --throttle-addr); the tests of that budget (login_throttle) pass their own.
const GATEWAY_DEFAULT_ARGS = ['--heartbeat-ttl', String(HEARTBEAT_TTL_MS), '--ping-interval', '5', '--throttle-addr', '1000000'];
const ROUTER_DEFAULT_ARGS = ['--lease-ms', String(LEASE_MS), '--reap-interval', String(REAP_INTERVAL_MS)];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A timeout for Promise.race that does not keep node alive once the race is
// won (the child's own handle does while it runs): a file ends at its last
// test instead of when its longest stop() timeout would have fired.
const deadline = (ms) => new Promise((r) => setTimeout(r, ms).unref());

// ---------------------------------------------------------------- children

const children = new Set();
function killAllNow() {
    for (const c of children) {
        try {
            c.kill('SIGKILL');
        } catch {
            // already gone: nothing to kill
        }
    }
}
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
        killAllNow();
        process.exit(128 + os.constants.signals[sig]);
    });
}

// A free TCP port on 127.0.0.1 (bind to 0, read it, release it).
export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

// Polls fn() until it returns a truthy value; returns that value. On timeout
// throws "timed out after N ms waiting for <what>; last: <last value/error>".
export async function waitFor(fn, { timeout = 10000, interval = 50, what = 'condition' } = {}) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
        try {
            const v = await fn();
            if (v) return v;
            last = v;
        } catch (e) {
            last = e && e.message ? e.message : e;
        }
        if (Date.now() >= deadline) {
            throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
        }
        await sleep(interval);
    }
}

// One process under test. Output goes to a file and is kept in memory so a
// test can print what the process said while it ran.
export class Proc {
    constructor(name, logDir) {
        this.name = name;
        this.logFile = path.join(logDir, `${name}.log`);
        this.log = '';
        this.child = null;
        this.expectRunning = false;
        this.exit = null; // {code, signal} of the last run
        this.starts = 0;
    }

    start(cmd, args, env = {}) {
        this.starts++;
        const header = `\n===== ${new Date().toISOString()} start #${this.starts}: ${cmd} ${args.join(' ')}\n`;
        this._append(header);
        const child = spawn(cmd, args, {
            stdio: ['ignore', 'pipe', 'pipe'],
            env: { ...process.env, ...env },
        });
        this.child = child;
        this.exit = null;
        this.expectRunning = true;
        children.add(child);
        child.stdout.on('data', (d) => this._append(d.toString()));
        child.stderr.on('data', (d) => this._append(d.toString()));
        this.exited = new Promise((resolve) => {
            child.on('exit', (code, signal) => {
                children.delete(child);
                this.exit = { code, signal };
                this._append(`===== ${new Date().toISOString()} exited code=${code} signal=${signal}\n`);
                resolve(this.exit);
            });
            child.on('error', (e) => {
                children.delete(child);
                this.exit = { code: null, signal: null, error: e.message };
                this._append(`===== spawn error: ${e.message}\n`);
                resolve(this.exit);
            });
        });
        return this;
    }

    _append(s) {
        this.log += s;
        fs.appendFileSync(this.logFile, s);
    }

    get running() {
        return this.child !== null && this.exit === null;
    }

    get pid() {
        return this.child && this.child.pid;
    }

    // Sends sig and (unless wait=false) waits for the exit; returns {code, signal}.
    async signal(sig, { wait = true, timeout = 10000 } = {}) {
        this.expectRunning = false;
        if (!this.running) return this.exit;
        this.child.kill(sig);
        if (!wait) return null;
        const t = deadline(timeout).then(() => 'timeout');
        const r = await Promise.race([this.exited, t]);
        if (r === 'timeout') throw new Error(`${this.name} (pid ${this.pid}) did not exit within ${timeout} ms of ${sig}`);
        return r;
    }

    // SIGTERM, then SIGKILL if it does not exit in time.
    async stop(timeout = 5000) {
        this.expectRunning = false;
        if (!this.running) return this.exit;
        this.child.kill('SIGTERM');
        const r = await Promise.race([this.exited, deadline(timeout).then(() => null)]);
        if (r) return r;
        this._append(`===== did not exit ${timeout} ms after SIGTERM: SIGKILL\n`);
        this.child.kill('SIGKILL');
        return this.exited;
    }
}

// ---------------------------------------------------------------- redis

// A minimal binary-safe RESP client: one connection per command (Redis may be
// restarted under the tests). Bulk strings come back as Buffers unless
// asString; errors reject.
export function redisCommand(port, args, { asString = true, timeout = 3000 } = {}) {
    return new Promise((resolve, reject) => {
        const sock = net.createConnection({ host: '127.0.0.1', port });
        let buf = Buffer.alloc(0);
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error(`redis ${args[0]}: no reply within ${timeout} ms`));
        }, timeout);
        const finish = (err, v) => {
            clearTimeout(timer);
            sock.destroy();
            err ? reject(err) : resolve(v);
        };
        sock.on('error', (e) => finish(new Error(`redis :${port} ${args[0]}: ${e.code || e.message}`)));
        sock.on('connect', () => {
            const parts = [`*${args.length}\r\n`];
            for (const a of args) {
                const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
                parts.push(`$${b.length}\r\n`, b, '\r\n');
            }
            sock.write(Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p)))));
        });
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            let r;
            try {
                r = parseResp(buf, 0, asString);
            } catch (e) {
                finish(e);
                return;
            }
            if (r) finish(r.err ? new Error(`redis ${args.join(' ')}: ${r.err}`) : null, r.value);
        });
    });
}

// Returns {value, end} or null when incomplete; {err} for an error reply.
export function parseResp(buf, pos, asString) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return null;
    const type = String.fromCharCode(buf[pos]);
    const line = buf.toString('utf8', pos + 1, eol);
    const after = eol + 2;
    switch (type) {
        case '+':
            return { value: line, end: after };
        case '-':
            return { err: line, end: after };
        case ':':
            return { value: Number(line), end: after };
        case '$': {
            const n = Number(line);
            if (n < 0) return { value: null, end: after };
            if (buf.length < after + n + 2) return null;
            const b = buf.subarray(after, after + n);
            return { value: asString ? b.toString('utf8') : Buffer.from(b), end: after + n + 2 };
        }
        case '*': {
            const n = Number(line);
            if (n < 0) return { value: null, end: after };
            const out = [];
            let p = after;
            for (let i = 0; i < n; i++) {
                const r = parseResp(buf, p, asString);
                if (!r) return null;
                if (r.err) return r;
                out.push(r.value);
                p = r.end;
            }
            return { value: out, end: p };
        }
        default:
            throw new Error(`redis: unexpected reply type ${JSON.stringify(type)}`);
    }
}

// Runs redis-cli (the same tool an operator uses) and returns its stdout.
// A real replica of a one-Redis deployment (redis-server --replicaof on a private port):
// start() links it and waits until the master counts it, stop() stops it and waits until the
// master no longer does (send_wait.test.mjs, gw_wait.test.mjs: WAIT against a real replica).
export class RedisReplica {
    constructor(cluster) {
        this.cluster = cluster;
        this.proc = null;
        this.port = 0;
    }

    async count() {
        return Number(/connected_slaves:(\d+)/.exec((await redisCli(this.cluster.redisPort, ['INFO', 'replication'])).stdout)[1]);
    }

    async start() {
        if (!this.port) this.port = await freePort();
        if (!this.proc) this.proc = new Proc('replica', this.cluster.dir);
        const dir = path.join(this.cluster.tmp, 'replica');
        fs.mkdirSync(dir, { recursive: true });
        this.proc.start('redis-server', [
            ...['--port', String(this.port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
            ...['--replicaof', '127.0.0.1', String(this.cluster.redisPort)],
        ]);
        await waitFor(async () => /master_link_status:up/.test((await redisCli(this.port, ['INFO', 'replication'])).stdout), {
            timeout: 10000,
            what: 'the replica linked to its master',
        });
        await waitFor(async () => (await this.count()) === 1, { timeout: 10000, what: 'the master counting its replica' });
    }

    async stop() {
        if (!this.proc || !this.proc.running) return;
        await this.proc.stop();
        await waitFor(async () => (await this.count()) === 0, { timeout: 10000, what: 'the master without replica' });
    }
}

export function redisCli(port, args, timeout = 3000) {
    return new Promise((resolve) => {
        execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout }, (err, stdout, stderr) =>
            resolve({ ok: !err, stdout: stdout.trim(), stderr: stderr.trim() }),
        );
    });
}

// ---------------------------------------------------------------- cluster

function slug(s) {
    return s
        .replace(/[^A-Za-z0-9._-]+/g, '_')
        .replace(/^_+|_+$/g, '')
        .slice(0, 100);
}

const SANITIZER_RE = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer)/;

// PARLEY_TEST_REDIS=cluster: every test's Redis is a one-node Redis Cluster (all 16384 slots on
// it). Parley reaches it with a plain redis:// URL (one connection, never a MOVED), and Redis
// refuses any script that touches keys of two slots (docs/internals.md "Redis Cluster"): the
// suite run this way checks that every script stays inside one slot.
export const ONE_NODE_CLUSTER = process.env.PARLEY_TEST_REDIS === 'cluster';
// PARLEY_TEST_REDIS=cluster3 (or new Cluster(suite, {redis: 'cluster3'})): the deployment's Redis
// is a local 3-master Redis Cluster (lib/rcluster.mjs; opts.replicas per master, default 0)
// reached with a redis-cluster:// URL of its masters: gateways, router and CLI run on the
// cluster link. cluster.redis(...) follows MOVED; PUBSUB NUMSUB is summed over the nodes.
export const CLUSTER3 = process.env.PARLEY_TEST_REDIS === 'cluster3';
// The router stores messages in steps (send_step.lua) on a cluster node or with --send-steps
// (PARLEY_SEND_STEPS=1): a test of send.lua's queued group fan-outs does not apply then.
export const SEND_STEPS = ONE_NODE_CLUSTER || CLUSTER3 || process.env.PARLEY_SEND_STEPS === '1';
export const NO_QUEUED_FANOUTS = SEND_STEPS && 'in steps (a cluster) a group message is a fork of member steps: no queued fan-out jobs';

// Gives a cluster-enabled redis-server on port every slot (once: a restart keeps them in its
// nodes.conf) and waits until it says cluster_state:ok.
export async function oneNodeCluster(port) {
    const info = (await redisCli(port, ['CLUSTER', 'INFO'])).stdout;
    if (!/cluster_slots_assigned:16384/.test(info)) {
        const r = await redisCli(port, ['CLUSTER', 'ADDSLOTSRANGE', '0', '16383']);
        if (r.stdout !== 'OK') throw new Error(`CLUSTER ADDSLOTSRANGE on :${port}: ${r.stdout} ${r.stderr}`);
    }
    await waitFor(async () => /cluster_state:ok/.test((await redisCli(port, ['CLUSTER', 'INFO'])).stdout), {
        timeout: 10000,
        what: `one-node cluster on :${port} cluster_state:ok`,
    });
}

export class Cluster {
    // suite: name of the test file's cluster (log directory).
    // opts.gateways: number of gateways (default 2)
    // opts.gatewayArgs: extra args for every gateway, or a function (index) => args
    // opts.gatewayWrap: a command line the gateway runs under (e.g. ['prlimit', '--nofile=96:96']);
    //   it must exec the gateway, so the pid stays the gateway's
    // opts.routerArgs: extra args for the router
    // opts.redisArgs: extra args for redis-server
    // opts.redis: 'one' (one redis-server; the default) or 'cluster3' (see CLUSTER3), with
    //   opts.replicas replicas per master; opts.waitSlots: false starts without waiting for the
    //   router to serve every slot
    constructor(suite, opts = {}) {
        this.suite = suite;
        this.opts = {
            gateways: 2,
            gatewayArgs: [],
            gatewayWrap: [],
            routerArgs: [],
            redisArgs: [],
            redis: CLUSTER3 ? 'cluster3' : 'one',
            replicas: 0,
            ...opts,
        };
        this.rc = null; // cluster3: the RedisCluster
        this.dir = path.join(ARTIFACTS, suite);
        this.gateways = []; // {proc, port, id, args}
        this.routers = [];
        this.redisProc = null;
        this.redisPort = 0;
        this.routerCount = 0;
        this.userCount = 0;
    }

    bin(name) {
        const p = path.join(BUILD_DIR, name);
        if (!fs.existsSync(p)) throw new Error(`${p} does not exist: build Parley first (PARLEY_BUILD_DIR=${BUILD_DIR})`);
        return p;
    }

    get procs() {
        const redis = this.rc ? this.rc.nodes.map((n) => n.proc) : [this.redisProc];
        return [...redis, ...this.routers.map((r) => r.proc), ...this.gateways.map((g) => g.proc)].filter(Boolean);
    }

    get cluster3() {
        return this.opts.redis === 'cluster3';
    }

    get redisUrl() {
        if (this.cluster3) return `redis-cluster://${this.rc.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
        return `redis://127.0.0.1:${this.redisPort}`;
    }

    gw(i) {
        return this.gateways[i].port;
    }

    // ------------------------------------------------ start / stop

    async start() {
        fs.rmSync(this.dir, { recursive: true, force: true });
        fs.mkdirSync(path.join(this.dir, 'tests'), { recursive: true });
        this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `parley-it-${this.suite}-`));
        this.webRoot = path.join(this.tmp, 'web');
        fs.mkdirSync(this.webRoot);
        fs.writeFileSync(path.join(this.webRoot, 'index.html'), '<!doctype html><title>parley test</title>\n');
        this.bin('parley-gateway');
        this.bin('parley-router');
        await this.startRedis();
        await this.startRouter({ waitSlots: this.opts.waitSlots !== false });
        for (let i = 0; i < this.opts.gateways; i++) {
            const extra = typeof this.opts.gatewayArgs === 'function' ? this.opts.gatewayArgs(i) : this.opts.gatewayArgs;
            await this.startGateway({ args: extra });
        }
    }

    async stop() {
        await Client.closeAll();
        const results = await Promise.all([...this.gateways.map((g) => g.proc), ...this.routers.map((r) => r.proc)].map(async (p) => [p, await p.stop()]));
        if (this.redisProc) await this.redisProc.stop();
        if (this.rc) await this.rc.stop();
        if (this.tmp) fs.rmSync(this.tmp, { recursive: true, force: true });
        // A sanitizer report anywhere is a failure of the file.
        const bad = this.procs.filter((p) => SANITIZER_RE.test(p.log));
        if (bad.length) {
            throw new Error(`sanitizer reports in: ${bad.map((p) => p.logFile).join(', ')}\n` + bad.map((p) => tail(p.log, 80)).join('\n'));
        }
        return results;
    }

    // ------------------------------------------------ redis

    // Waits for PING to answer PONG, or with loading: true only until the
    // server answers at all (INFO works while it loads its data; PING does not).
    async startRedis({ loading = false } = {}) {
        if (this.cluster3) {
            if (this.rc) throw new Error('cluster3: the Redis Cluster is started once per file');
            const { RedisCluster } = await import('./rcluster.mjs');
            this.rc = new RedisCluster(`${this.suite}-redis`, { masters: 3, replicas: this.opts.replicas });
            await this.rc.start();
            this.redisPort = this.rc.nodes[0].port;
            return;
        }
        if (!this.redisPort) this.redisPort = await freePort();
        if (!this.redisDir) {
            this.redisDir = path.join(this.tmp, 'redis');
            fs.mkdirSync(this.redisDir);
        }
        if (!this.redisProc) this.redisProc = new Proc('redis', this.dir);
        this.redisProc.start('redis-server', [
            '--port',
            String(this.redisPort),
            '--bind',
            '127.0.0.1',
            '--dir',
            this.redisDir,
            '--appendonly',
            'yes',
            '--appendfsync',
            'always',
            '--save',
            '',
            '--daemonize',
            'no',
            '--protected-mode',
            'yes',
            '--logfile',
            '',
            ...(ONE_NODE_CLUSTER ? ['--cluster-enabled', 'yes', '--cluster-config-file', path.join(this.redisDir, 'nodes.conf')] : []),
            ...this.opts.redisArgs,
        ]);
        await waitFor(
            async () => {
                if (!this.redisProc.running) throw new Error(`redis-server exited: ${JSON.stringify(this.redisProc.exit)}`);
                if (loading) return /^loading:/m.test((await redisCli(this.redisPort, ['INFO', 'persistence'])).stdout);
                const r = await redisCli(this.redisPort, ['PING']);
                return r.stdout === 'PONG';
            },
            { timeout: 10000, interval: loading ? 10 : 50, what: `redis-server ${loading ? 'answering' : 'PONG'} on :${this.redisPort}` },
        );
        if (ONE_NODE_CLUSTER && !loading) await oneNodeCluster(this.redisPort);
    }

    async stopRedis(sig = 'SIGTERM') {
        return this.redisProc.signal(sig);
    }

    redis(...args) {
        if (this.cluster3) return this.clusterCommand(args);
        return redisCommand(this.redisPort, args);
    }

    redisBuffers(...args) {
        if (this.cluster3) return this.clusterCommand(args, { asString: false });
        return redisCommand(this.redisPort, args, { asString: false });
    }

    // cluster3: a command to a live master, following MOVED (and ASK, TRYAGAIN and
    // CLUSTERDOWN after a pause) up to 20 times; PUBSUB NUMSUB summed over every live node
    // (classic pub/sub: each node counts its own subscribers).
    async clusterCommand(args, opts = {}) {
        const live = this.rc.nodes.filter((n) => n.proc.running);
        if (String(args[0]).toUpperCase() === 'PUBSUB' && String(args[1]).toUpperCase() === 'NUMSUB') {
            const all = await Promise.all(live.map((n) => redisCommand(n.port, args, opts)));
            return all[0].map((v, i) => (i % 2 ? all.reduce((sum, r) => sum + Number(r[i]), 0) : v));
        }
        let port = live[0].port;
        for (let hop = 0; ; hop++) {
            try {
                return await redisCommand(port, args, opts);
            } catch (e) {
                const m = /: (MOVED|ASK) \d+ [^ ]*:(\d+)$/.exec(e.message);
                const wait = /: (TRYAGAIN|CLUSTERDOWN)/.test(e.message);
                if (hop >= 20 || !(m || wait)) throw e;
                if (m) port = Number(m[2]);
                if (wait || (m && m[1] === 'ASK')) await sleep(100);
            }
        }
    }

    // Waits until at least min gateways follow NAME's presence (SUBSCRIBE
    // parley:presence:NAME): a session that follows NAME sees its online from then on.
    async presenceSubscribed(name, min = 1) {
        await waitFor(async () => Number((await this.redis('PUBSUB', 'NUMSUB', `parley:presence:${name}`))[1]) >= min, {
            timeout: 3000,
            what: `${min} gateway(s) subscribed to parley:presence:${name}`,
        });
    }

    // ------------------------------------------------ router

    async startRouter({ args = [], waitSlots = true } = {}) {
        const n = ++this.routerCount;
        const id = `router-${n}`;
        const proc = new Proc(id, this.dir);
        const all = ['--redis-url', this.redisUrl, '--id', id, '--log-level', LOG_LEVEL, ...ROUTER_DEFAULT_ARGS, ...this.opts.routerArgs, ...args];
        proc.start(this.bin('parley-router'), all);
        const r = { proc, id, args: all };
        this.routers.push(r);
        if (waitSlots) await this.waitRouted(proc);
        return r;
    }

    // The live router (the last one started that still runs).
    get router() {
        return [...this.routers].reverse().find((r) => r.proc.running);
    }

    // Every routing slot channel has a subscriber: a gateway's PUBLISH to
    // parley:rt:N reaches a router for every N.
    async waitRouted(proc, timeout = 15000) {
        const chans = Array.from({ length: SLOTS }, (_, i) => `parley:rt:${i}`);
        await waitFor(
            async () => {
                if (proc && !proc.running) throw new Error(`${proc.name} exited: ${JSON.stringify(proc.exit)}`);
                const r = await this.redis('PUBSUB', 'NUMSUB', ...chans);
                let missing = 0; // slot channels nobody listens to
                for (let i = 1; i < r.length; i += 2) if (Number(r[i]) < 1) missing++;
                if (missing) throw new Error(`${missing} of ${SLOTS} parley:rt:N channels have no subscriber`);
                return true;
            },
            { timeout, what: `a router subscribed to all ${SLOTS} parley:rt:N channels` },
        );
    }

    async killRouter(sig = 'SIGKILL') {
        const r = this.router;
        if (!r) throw new Error('no running router to kill');
        return r.proc.signal(sig);
    }

    // ------------------------------------------------ gateways

    // Starts a new gateway (or, with index, restarts gateway `index` on its
    // port and id). Waits for /healthz 200.
    // wait: false returns once the process is started, not once its /healthz is 200
    async startGateway({ args = [], index, wait = true } = {}) {
        let g;
        if (index !== undefined) {
            g = this.gateways[index];
        } else {
            const i = this.gateways.length;
            const port = await freePort();
            g = { index: i, id: `gw${i + 1}`, port, proc: new Proc(`gw${i + 1}`, this.dir) };
            g.args = [
                '--listen',
                '127.0.0.1',
                '--port',
                String(port),
                '--id',
                g.id,
                '--redis-url',
                this.redisUrl,
                '--secret',
                SECRET,
                '--web-root',
                this.webRoot,
                '--log-level',
                LOG_LEVEL,
                ...GATEWAY_DEFAULT_ARGS,
                ...args,
            ];
            this.gateways.push(g);
        }
        const wrap = this.opts.gatewayWrap;
        if (wrap.length) g.proc.start(wrap[0], [...wrap.slice(1), this.bin('parley-gateway'), ...g.args]);
        else g.proc.start(this.bin('parley-gateway'), g.args);
        if (wait) await this.waitHealthy(g.index);
        return g;
    }

    async waitHealthy(i, timeout = 15000) {
        const g = this.gateways[i];
        await waitFor(
            async () => {
                if (!g.proc.running) throw new Error(`${g.id} exited: ${JSON.stringify(g.proc.exit)}`);
                return (await healthz(g.port)) === 200;
            },
            { timeout, what: `${g.id} /healthz 200 on :${g.port}` },
        );
    }

    async killGateway(i, sig = 'SIGKILL', opts) {
        return this.gateways[i].proc.signal(sig, opts);
    }

    async ensureGateway(i) {
        if (!this.gateways[i].proc.running) await this.startGateway({ index: i });
    }

    // ------------------------------------------------ CLI

    cli(args, timeout = 5000) {
        return new Promise((resolve) => {
            let bin;
            try {
                bin = this.bin('parley');
            } catch (e) {
                resolve({ ok: false, stdout: '', stderr: e.message });
                return;
            }
            execFile(bin, ['--redis-url', this.redisUrl, '--secret', SECRET, ...args], { timeout }, (err, stdout, stderr) =>
                resolve({ ok: !err, code: err ? err.code : 0, stdout, stderr }),
            );
        });
    }

    // ------------------------------------------------ users

    // A fresh user name for this cluster: `<base><n>` (fits [a-z0-9_.-]{1,32}).
    name(base = 'u') {
        return `${base}${++this.userCount}`;
    }

    // Registers one fresh user per base name (through gateway `gw`, default
    // the first); resolves with [{name, token}] in the same order.
    async users(bases, gw = 0) {
        const names = bases.map((b) => this.name(b));
        const tokens = await makeUsers(this.gw(gw), names);
        return names.map((n) => ({ name: n, token: tokens[n] }));
    }

    // Creates a fresh group #<base>N as client c (its first member) with
    // members; resolves with its name once c has the group frame.
    async createGroup(c, base, members, open = false) {
        const g = `#${this.name(base)}`;
        c.send({ kind: 'group', op: 'create', name: g, members, open });
        const f = await c.next((x) => (x.kind === 'group' && x.name === g) || x.kind === 'error');
        assert.equal(f.kind, 'group', brief(f));
        return g;
    }

    // ------------------------------------------------ tests

    // Like node:test's test(), plus: per-test log slice written to
    // <artifacts>/<suite>/tests/<name>.log and printed on failure; clients
    // left open are closed; a process that died unexpectedly fails the test.
    // Also test(name, opts, fn), as node:test allows.
    test(name, fn, opts = {}) {
        if (typeof fn !== 'function') [fn, opts] = [opts, fn || {}];
        return test(name, { timeout: 60000, ...opts }, async (t) => {
            const marks = new Map(this.procs.map((p) => [p, p.log.length]));
            const t0 = new Date().toISOString();
            let failure = null;
            try {
                await this.heal();
                await fn(t);
                const died = this.died();
                if (died) throw new Error(died);
            } catch (e) {
                failure = e;
                // a crash explains most failures: give a dying process (a
                // sanitizer report takes a moment) the time to exit, say it first
                if (!opts.todo) await waitFor(() => this.died(), { timeout: 2000, interval: 100 }).catch(() => {});
                const died = this.died();
                if (died && !e.message.startsWith(died)) e.message = `${died}\n${e.message}`;
            } finally {
                await Client.closeAll().catch(() => {});
                let text = `test: ${name}\nstarted: ${t0}\nresult: ${failure ? 'FAIL' : 'pass'}\n`;
                if (failure) text += `error: ${failure.stack || failure}\n`;
                for (const p of this.procs) {
                    const from = marks.has(p) ? marks.get(p) : 0;
                    text += `\n----- ${p.name} (${p.logFile}) -----\n${p.log.slice(from)}`;
                }
                const file = path.join(this.dir, 'tests', `${slug(name)}.log`);
                fs.writeFileSync(file, text);
                if (failure && !opts.todo) {
                    let shown = `[${this.suite}] "${name}" failed: ${failure.message}\nprocess output during the test (${file}):\n`;
                    for (const p of this.procs) {
                        const from = marks.has(p) ? marks.get(p) : 0;
                        shown += `----- ${p.name} -----\n${tail(p.log.slice(from), 60)}\n`;
                    }
                    console.error(shown);
                    t.diagnostic(`process logs of this test: ${file}`);
                }
            }
            if (failure) throw failure;
        });
    }
}

// A description of the processes that exited although the test did not stop
// them (with the first sanitizer line, if any), or ''.
Cluster.prototype.died = function died() {
    const dead = this.procs.filter((p) => p.expectRunning && !p.running);
    if (!dead.length) return '';
    return `process(es) died during the test: ${dead
        .map((p) => {
            const san = p.log.split('\n').find((l) => SANITIZER_RE.test(l));
            return `${p.name} exited ${JSON.stringify(p.exit)}${san ? ` after "${san.trim()}"` : ''}`;
        })
        .join('; ')}`;
};

// Restarts what an earlier test crashed, so one crash fails one test only.
Cluster.prototype.heal = async function heal() {
    if (!this.rc && this.redisProc && this.redisProc.expectRunning && !this.redisProc.running) {
        console.error(`[${this.suite}] restarting redis, which died earlier`);
        await this.startRedis();
    }
    for (const r of this.routers) {
        if (r.proc.expectRunning && !r.proc.running) {
            console.error(`[${this.suite}] starting a router: ${r.id} died earlier`);
            r.proc.expectRunning = false;
            await this.startRouter();
        }
    }
    for (const g of this.gateways) {
        if (g.proc.expectRunning && !g.proc.running) {
            console.error(`[${this.suite}] restarting ${g.id}, which died earlier`);
            await this.startGateway({ index: g.index });
        }
    }
};

function tail(s, lines) {
    const a = s.split('\n');
    return a.length > lines ? `...(${a.length - lines} lines above)\n${a.slice(-lines).join('\n')}` : s;
}

// Registers users over HTTP on gateway port `port`; returns {name: token}.
// A 503 ("storage unreachable, retry later": the gateway's Redis link was
// dropped by its watchdog on a loaded machine) is retried, as the protocol
// tells a client to, for up to 10 s; a 409 after such a retry means the first
// try was stored after all, and is settled by logging in.
export async function makeUsers(port, names, password = 'correct horse battery') {
    const out = {};
    for (const n of names) {
        const deadline = Date.now() + 10000;
        let r = await register(port, n, password);
        let retried = false;
        while ((r.status === 503 || r.status === 429) && Date.now() < deadline) {
            // as the contract says: retry later (429: after Retry-After, here at most 1 s)
            await new Promise((res) => setTimeout(res, r.status === 429 ? 1000 : 200));
            r = await register(port, n, password);
            retried = true;
        }
        if (retried && r.status === 409) r = await login(port, n, password);
        if (![200, 201].includes(r.status) || !r.body || typeof r.body.token !== 'string')
            throw new Error(`register ${n}: expected 201 with a token, got ${r.status} ${r.text}`);
        out[n] = r.body.token;
    }
    return out;
}
