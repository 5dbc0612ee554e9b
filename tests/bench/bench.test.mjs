// parley-bench against a real stack (the `bench` stage of tests/run.sh): each
// mode runs a few seconds at a small scale and must complete, report nothing
// lost and write JSON with consistent numbers; bad flags and an unknown mode
// exit 2; pair and fanout with --ops text,edit,react,delete run a step per op,
// each change acked and delivered once; a wrong secret is reported as failed
// connections (exit 1); mode
// noisy runs each phase (baseline, each attacker activity, all) with the
// bystanders losing nothing;
// tools/bench/plot.py turns a ramp into an SVG; run-stack.sh's cluster mode
// (--redis-cluster 2 --replicas 1, a stack of its own) carries pair traffic with
// every node's CPU and counters reported. Speed is never asserted: that is
// docs/benchmarks.md.
//
// The stack (redis-server, a router, two gateways, 400 users bench0..) comes
// from tools/bench/run-stack.sh, which tests/bench/run.sh starts around this
// file: parley-bench finds the gateways, their pids and the secret in the
// PARLEY_BENCH_* / PARLEY_SECRET variables it exports. Each test runs its own
// parley-bench (the plot test its own short ramp), so any one runs alone:
//   PARLEY_TEST_ONLY='^ramp' tests/bench/run.sh
// Each run's output goes to <artifacts>/bench/NAME.log, its JSON to NAME.json
// (PARLEY_BENCH_ART, default $PARLEY_ARTIFACTS/bench or tests/artifacts/bench).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BUILD = process.env.PARLEY_BUILD_DIR || join(ROOT, 'build');
const BENCH = join(BUILD, 'parley-bench');
const ART = process.env.PARLEY_BENCH_ART || join(process.env.PARLEY_ARTIFACTS || join(ROOT, 'tests/artifacts'), 'bench');
mkdirSync(ART, { recursive: true });
// a hung run fails its test instead of the stage hanging
const RUN_TIMEOUT_MS = 60_000;

// The tests that talk to gateways need the stack's environment.
function needStack() {
    assert.ok(
        process.env.PARLEY_BENCH_GATEWAYS,
        'no stack: PARLEY_BENCH_GATEWAYS is not set; run this file through tests/bench/run.sh ' +
            '(or tools/bench/run-stack.sh --users 400 -- node --test tests/bench/bench.test.mjs)',
    );
}

// run(name, cmd, args): cmd's stdout and stderr go to ART/name.log; resolves
// to { code, signal, log } (log: the file's text).
function run(name, cmd, args) {
    const logPath = join(ART, `${name}.log`);
    const fd = openSync(logPath, 'w');
    return new Promise((done, fail) => {
        const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL' });
        child.on('error', fail);
        child.on('close', (code, signal) => done({ code, signal, log: readFileSync(logPath, 'utf8') }));
    }).finally(() => closeSync(fd));
}

// the last lines of a run's output, for a failure message
function tail(log, n = 15) {
    return log.trimEnd().split('\n').slice(-n).join('\n').replace(/^/gm, '     ');
}

function assertExit(r, want, what) {
    const got = r.signal ? `killed by ${r.signal} (timed out after ${RUN_TIMEOUT_MS / 1000} s?)` : `exit status ${r.code}`;
    assert.equal(r.code, want, `${what}: ${got}, expected exit status ${want}; its output ends:\n${tail(r.log)}`);
}

// bench(name, want, cmdline): parley-bench CMDLINE (words split on spaces)
// --progress 0 --json ART/name.json, which must exit with status want;
// resolves to the parsed JSON.
async function bench(name, want, cmdline) {
    needStack();
    const json = join(ART, `${name}.json`);
    const r = await run(name, BENCH, [...cmdline.split(/\s+/), '--progress', '0', '--json', json]);
    assertExit(r, want, `parley-bench ${cmdline}`);
    try {
        return JSON.parse(readFileSync(json, 'utf8'));
    } catch (e) {
        assert.fail(`parley-bench ${cmdline}: ${json} is not valid JSON (${e.message}); its output ends:\n${tail(r.log)}`);
    }
}

// the first step of a pair or fanout run
function firstStep(d) {
    assert.ok(Array.isArray(d.steps) && d.steps.length > 0, `expected at least one step in the JSON, got steps = ${JSON.stringify(d.steps)}`);
    return d.steps[0];
}

test('--help: prints the usage, naming MODE, exit status 0', async () => {
    const r = await run('help', BENCH, ['--help']);
    assertExit(r, 0, 'parley-bench --help');
    assert.match(r.log, /MODE/, `expected the usage to name MODE; it was:\n${tail(r.log)}`);
});

test('bad flag: --rate nope exits 2', async () => {
    assertExit(await run('badflag', BENCH, ['pair', '--rate', 'nope']), 2, 'parley-bench pair --rate nope');
});

test('unknown mode: teleport exits 2', async () => {
    assertExit(await run('badmode', BENCH, ['teleport']), 2, 'parley-bench teleport');
});

test('--ops: a list not starting with text, repeating an op or deleting before the end exits 2', async () => {
    for (const ops of ['edit', 'text,edit,edit', 'text,delete,edit', 'text,teleport']) {
        assertExit(await run('badops', BENCH, ['pair', '--ops', ops]), 2, `parley-bench pair --ops ${ops}`);
    }
    assertExit(await run('badops', BENCH, ['ramp', '--ops', 'text,edit']), 2, 'parley-bench ramp --ops text,edit');
});

test('connect: 300 sockets over 2 gateways all open, 150 on each, RSS reported', async () => {
    const d = await bench('connect', 0, 'connect --connections 300 --procs 2 --sources 4 --hold 1');
    const c = d.connect;
    assert.equal(c.opened, 300, `expected connect.opened == 300, got ${c.opened}`);
    assert.equal(c.failed, 0, `expected connect.failed == 0, got ${c.failed}`);
    assert.ok(c.handshakes_per_s > 0, `expected connect.handshakes_per_s > 0, got ${c.handshakes_per_s}`);
    assert.equal(c.gateways.length, 2, `expected 2 entries in connect.gateways, got ${c.gateways.length}`);
    c.gateways.forEach((g, i) => {
        assert.equal(g.connections, 150, `expected connect.gateways[${i}].connections == 150, got ${g.connections}`);
        assert.ok(g.rss_after_kib > 0, `expected connect.gateways[${i}].rss_after_kib > 0, got ${g.rss_after_kib}`);
    });
});

test('pair: every message acked and delivered once, none lost, latency percentiles in order', async () => {
    const s = firstStep(await bench('pair', 0, 'pair --pairs 20 --rate 400 --duration 2 --procs 2'));
    assert.ok(s.sent > 0, `expected sent > 0, got ${s.sent}`);
    assert.equal(s.acked, s.sent, `expected acked == sent (${s.sent}), got ${s.acked}`);
    assert.equal(s.delivered, s.sent, `expected delivered == sent (${s.sent}), got ${s.delivered}`);
    assert.equal(s.lost, 0, `expected lost == 0, got ${s.lost}`);
    assert.equal(s.unacked, 0, `expected unacked == 0, got ${s.unacked}`);
    const l = s.latency;
    assert.equal(l.n, s.delivered, `expected latency.n == delivered (${s.delivered}), got ${l.n}`);
    assert.ok(l.p50_ms <= l.p99_ms && l.p99_ms <= l.max_ms, `expected latency p50 <= p99 <= max, got ${l.p50_ms} / ${l.p99_ms} / ${l.max_ms} ms`);
});

test('fanout: each message acked and delivered to the 29 other members, none lost', async () => {
    const s = firstStep(await bench('fanout', 0, 'fanout --members 30 --rate 10 --duration 2'));
    assert.ok(s.sent > 0, `expected sent > 0, got ${s.sent}`);
    assert.equal(s.acked, s.sent, `expected acked == sent (${s.sent}), got ${s.acked}`);
    assert.equal(s.delivered, s.acked * 29, `expected delivered == acked * 29 (${s.acked * 29}), got ${s.delivered}`);
    assert.equal(s.lost, 0, `expected lost == 0, got ${s.lost}`);
    assert.equal(s.last_member.n, s.sent, `expected last_member.n == sent (${s.sent}), got ${s.last_member.n}`);
});

// --ops: step 1 sends texts, each later step one edit / reaction / delete per acked text
function assertOpsSteps(d, perFrame) {
    assert.deepEqual(
        d.steps?.map((s) => s.op),
        ['text', 'edit', 'react', 'delete'],
        `expected one step per op, got ${JSON.stringify(d.steps?.map((s) => s.op))}`,
    );
    for (const s of d.steps) {
        const at = `step ${s.op}`;
        assert.ok(s.sent > 0, `${at}: expected sent > 0, got ${s.sent}`);
        assert.equal(s.sent, d.steps[0].acked, `${at}: expected one frame per acked text (${d.steps[0].acked}), got ${s.sent}`);
        assert.equal(s.acked, s.sent, `${at}: expected acked == sent (${s.sent}), got ${s.acked}`);
        assert.equal(s.delivered, s.acked * perFrame, `${at}: expected delivered == acked * ${perFrame}, got ${s.delivered}`);
        assert.equal(s.lost + s.unacked + s.errors + s.duplicates, 0, `${at}: expected nothing lost, unacked, refused or doubled: ${JSON.stringify(s)}`);
    }
}

test('pair --ops: texts, then an edit, a reaction and a delete of each, every frame acked and delivered once', async () => {
    assertOpsSteps(await bench('pair-ops', 0, 'pair --pairs 10 --rate 100 --duration 1 --ops text,edit,react,delete'), 1);
});

test('fanout --ops: the same in a group of 30, each change reaching the 29 other members', async () => {
    assertOpsSteps(await bench('fanout-ops', 0, 'fanout --members 30 --rate 10 --duration 1 --ops text,edit,react,delete'), 29);
});

test('ramp: 3 steps of 100..300 msg/s, each held with nothing lost', async () => {
    const d = await bench('ramp', 0, 'ramp --pairs 10 --rate-start 100 --rate-step 100 --rate-max 300 --step-seconds 1 --p99-bound-us 5000000');
    assert.equal(d.steps?.length, 3, `expected 3 steps, got ${d.steps?.length}`);
    d.steps.forEach((s, i) => {
        assert.ok(s.held, `expected steps[${i}] (rate ${s.rate}) to be held, it was not`);
        assert.equal(s.lost, 0, `expected steps[${i}] (rate ${s.rate}) lost == 0, got ${s.lost}`);
    });
    assert.equal(d.highest_rate_held, 300, `expected highest_rate_held == 300, got ${d.highest_rate_held}`);
});

test('noisy: bystanders lose nothing in any phase while the attacker hammers, syncs and opens sessions', async () => {
    // 10 pairs (bench0..19), attacker bench20 in a 50-member group (bench20..69), fillers bench70..73
    const d = await bench(
        'noisy',
        0,
        'noisy --pairs 10 --rate 100 --members 50 --duration 1 --settle-ms 200 --attacker-inbox 20 ' +
            '--attacker-inbox-size 30000 --attacker-sessions 20 --attacker-window 8',
    );
    assert.deepEqual(
        d.steps?.map((s) => s.phase),
        ['off', 'group', 'sync', 'sessions', 'all'],
        `expected one step per default phase, got ${JSON.stringify(d.steps?.map((s) => s.phase))}`,
    );
    assert.equal(d.noisy?.group_members, 50, `expected noisy.group_members == 50, got ${d.noisy?.group_members}`);
    assert.ok(d.noisy.fill_entries > 0, `expected the attacker's inbox filled (noisy.fill_entries > 0), got ${d.noisy.fill_entries}`);
    for (const s of d.steps) {
        const at = `phase ${s.phase}`;
        assert.ok(s.sent > 0, `${at}: expected sent > 0, got ${s.sent}`);
        assert.equal(s.acked, s.sent, `${at}: expected acked == sent (${s.sent}), got ${s.acked}`);
        assert.equal(s.delivered, s.sent, `${at}: expected delivered == sent (${s.sent}), got ${s.delivered}`);
        assert.equal(s.lost, 0, `${at}: expected lost == 0, got ${s.lost}`);
        assert.equal(s.unacked, 0, `${at}: expected unacked == 0, got ${s.unacked}`);
        assert.equal(s.ack.n, s.acked, `${at}: expected ack.n == acked (${s.acked}), got ${s.ack.n}`);
        const a = s.attacker;
        // the attacker did something, whatever the server's limits answered
        if (s.attack.group) {
            assert.ok(a.group.sent > 0, `${at}: expected the attacker to send group texts, got ${a.group.sent}`);
            assert.ok(
                a.group.acked + a.group.rate_limited + a.group.unavailable + a.group.errors > 0,
                `${at}: expected answers to the attacker's texts, got ${JSON.stringify(a.group)}`,
            );
        }
        if (s.attack.sync) {
            const y = a.sync;
            assert.ok(y.done + y.not_recovered + y.refused_429 + y.cut > 0, `${at}: expected the attacker to sync, got ${JSON.stringify(y)}`);
        }
        if (s.attack.sessions) {
            const c = a.sessions;
            assert.ok(c.opened + c.refused_429 > 0, `${at}: expected the attacker to open sessions, got ${JSON.stringify(c)}`);
        }
        if (!s.attack.group && !s.attack.sync && !s.attack.sessions) {
            assert.equal(a.group.sent + a.sync.done + a.sessions.attempted, 0, `${at}: expected the attacker idle, got ${JSON.stringify(a)}`);
        }
    }
});

test('noisy: an unknown phase exits 2', async () => {
    assertExit(await run('noisy-badphase', BENCH, ['noisy', '--phases', 'off,flood']), 2, 'parley-bench noisy --phases off,flood');
});

test('wrong-secret: 20 sockets refused with HTTP 401, reported as failed, exit status 1', async () => {
    const d = await bench('wrong-secret', 1, 'connect --connections 20 --secret not-the-stack-secret --hold 0');
    assert.equal(d.connect.failed, 20, `expected connect.failed == 20, got ${d.connect.failed}`);
    assert.equal(d.connect.opened, 0, `expected connect.opened == 0, got ${d.connect.opened}`);
    assert.match(String(d.error), /401/, `expected the JSON's error to mention 401, got ${JSON.stringify(d.error)}`);
});

// Well-formed enough: one <svg> root, every tag closed in order, nothing
// after the root; returns the start tags seen, e.g. ['svg', 'rect', ...].
function svgTags(text) {
    const seen = [];
    const open = [];
    const body = text.replace(/^\s*<\?xml[^>]*\?>/, '').trim();
    assert.match(body, /^<svg[\s>]/, `expected the SVG to start with <svg, it starts: ${body.slice(0, 80)}`);
    for (const m of body.matchAll(/<(\/?)([A-Za-z][\w:.-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g)) {
        const [, close, name, , empty] = m;
        if (close) {
            const top = open.pop();
            assert.equal(top, name, `expected </${top}> before </${name}> at offset ${m.index} of the SVG`);
            if (open.length === 0) assert.equal(body.slice(m.index + m[0].length).trim(), '', 'expected nothing after </svg>');
        } else {
            seen.push(name);
            if (!empty) open.push(name);
        }
    }
    assert.deepEqual(open, [], `expected every element closed, still open: ${open.join(', ')}`);
    return seen;
}

test('plot: plot.py draws an SVG with latency lines from parley-bench JSON', async () => {
    const d = await bench('plot-ramp', 0, 'ramp --pairs 10 --rate-start 100 --rate-step 100 --rate-max 200 --step-seconds 1 --p99-bound-us 5000000');
    firstStep(d);
    const svg = join(ART, 'plot-ramp.svg');
    const r = await run('plot', 'python3', [join(ROOT, 'tools/bench/plot.py'), join(ART, 'plot-ramp.json'), '-o', svg]);
    assertExit(r, 0, 'tools/bench/plot.py plot-ramp.json');
    const tags = svgTags(readFileSync(svg, 'utf8'));
    assert.ok(tags.includes('polyline'), `expected a <polyline> in ${svg}; its elements: ${[...new Set(tags)].join(', ')}`);
});

// run-stack.sh's cluster mode (issue 15's benchmark, tools/bench/cluster/shards.sh): a stack of
// its own, not the one around this file.
test('cluster: run-stack --redis-cluster 2 --replicas 1 runs pair on a Redis Cluster, nothing lost, CPU and counters of every node', async () => {
    const json = join(ART, 'cluster.json');
    const prefix = join(ART, 'cluster');
    const r = await run('cluster', join(ROOT, 'tools/bench/run-stack.sh'), [
        '--redis-cluster',
        '2',
        '--replicas',
        '1',
        '--users',
        '40',
        '--logs',
        join(ART, 'cluster-stack'),
        '--',
        join(ROOT, 'tools/bench/cluster/stats.sh'),
        prefix,
        'pair',
        '--pairs',
        '20',
        '--rate',
        '200',
        '--duration',
        '2',
        '--progress',
        '1',
        '--json',
        json,
    ]);
    assertExit(r, 0, 'run-stack.sh --redis-cluster 2 --replicas 1 -- stats.sh pair');
    assert.match(r.log, /redis cluster of 2 master\(s\) x 1 replica\(s\)/, `expected run-stack to start a cluster; its output ends:\n${tail(r.log)}`);
    const s = firstStep(JSON.parse(readFileSync(json, 'utf8')));
    assert.ok(s.sent > 0, `expected sent > 0, got ${s.sent}`);
    for (const k of ['acked', 'delivered']) assert.equal(s[k], s.sent, `expected ${k} == sent (${s.sent}), got ${s[k]}`);
    for (const k of ['lost', 'unacked', 'errors']) assert.equal(s[k], 0, `expected ${k} == 0, got ${s[k]}`);
    const nodes = ['redis1', 'redis2', 'redis1r1', 'redis2r1'];
    assert.deepEqual(
        Object.keys(s.cpu_s)
            .filter((k) => k.startsWith('redis'))
            .sort(),
        nodes.sort(),
        `CPU per step: ${JSON.stringify(s.cpu_s)}`,
    );
    const after = readFileSync(`${prefix}.after.txt`, 'utf8');
    for (const n of nodes) assert.match(after, new RegExp(`^== ${n} \\d+$`, 'm'), `expected ${n} in ${prefix}.after.txt`);
    assert.match(after, /^cluster_stats_messages_publish_received:\d+$/m, 'expected CLUSTER INFO counters in the snapshot');
});
