// stack.mjs - the real deployment the browser tests run against, and the
// browser itself.
//
//   redis-server, parley-router, gw1, gw2   tests/integration/lib/cluster.mjs
//                                           (free ports, logs, crash/restart),
//                                           gateways serving the built web/dist
//   haproxy (Debian)                        two frontends on free ports:
//       lbA -> gw1, with gw2 as backup      "site A": user A's page
//       lbB -> gw2, with gw1 as backup      "site B": user B's page
//     health-checked on /healthz every 200 ms, so when a gateway dies its
//     frontend sends the page's reconnect to the other gateway.
//   chromium (/usr/bin/chromium)            driven by playwright-core
//
// Environment: PARLEY_BUILD_DIR, PARLEY_ARTIFACTS (as the integration
// tests), PARLEY_WEB_DIST (default <repo>/web/dist), PARLEY_CHROMIUM
// (default /usr/bin/chromium), PARLEY_HAPROXY (default haproxy on PATH).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, Cluster, REPO, freePort, waitFor } from '../../integration/lib/cluster.mjs';

export const WEB_DIST = path.resolve(process.env.PARLEY_WEB_DIST || path.join(REPO, 'web/dist'));
export const CHROMIUM = process.env.PARLEY_CHROMIUM || '/usr/bin/chromium';
export const HAPROXY = process.env.PARLEY_HAPROXY || 'haproxy';
export const SCREENSHOTS = path.join(ARTIFACTS, 'screenshots');
// flags from shared/design/machine-notes.md (headless comes from launch())
const CHROMIUM_ARGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    // every page of a test is "visible" (read receipts depend on it)
    '--disable-backgrounding-occluded-windows',
    '--disable-renderer-backgrounding',
    '--disable-background-timer-throttling',
];

const kids = new Set();
process.on('exit', () => {
    for (const k of kids) {
        try {
            k.kill('SIGKILL');
        } catch {
            // already gone
        }
    }
});

export class Stack {
    constructor(suite) {
        if (!fs.existsSync(path.join(WEB_DIST, 'index.html')))
            throw new Error(`${WEB_DIST}/index.html missing: build the client first (cd web && npm ci && npm run build)`);
        this.cluster = new Cluster(suite, { gateways: 2, gatewayArgs: ['--web-root', WEB_DIST] });
        this.suite = suite;
    }

    async start() {
        await this.cluster.start();
        await this.startHaproxy();
        this.profile = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-e2e-chromium-'));
        this.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
        fs.mkdirSync(SCREENSHOTS, { recursive: true });
    }

    async stop() {
        if (this.browser) await this.browser.close().catch(() => {});
        if (this.haproxy) {
            this.haproxy.kill('SIGTERM');
            await this.haproxyExited;
        }
        if (this.profile) fs.rmSync(this.profile, { recursive: true, force: true });
        await this.cluster.stop();
    }

    // ------------------------------------------------ haproxy

    async startHaproxy() {
        this.lbA = await freePort();
        this.lbB = await freePort();
        this.lbStats = await freePort();
        const [g1, g2] = [this.cluster.gw(0), this.cluster.gw(1)];
        const cfg = `# written by tests/e2e/lib/stack.mjs
global
    maxconn 2000
    log stderr format raw local0 info

defaults
    mode http
    log global
    option httplog
    option redispatch
    retries 3
    timeout connect 1s
    timeout client 120s
    timeout server 120s
    timeout tunnel 1h
    timeout http-keep-alive 2s
    default-server inter 200ms fall 2 rise 2

frontend site_a
    bind 127.0.0.1:${this.lbA}
    default_backend gw_a

frontend site_b
    bind 127.0.0.1:${this.lbB}
    default_backend gw_b

frontend stats
    bind 127.0.0.1:${this.lbStats}
    stats enable
    stats uri /stats

backend gw_a
    option httpchk GET /healthz
    server gw1 127.0.0.1:${g1} check
    server gw2 127.0.0.1:${g2} check backup

backend gw_b
    option httpchk GET /healthz
    server gw2 127.0.0.1:${g2} check
    server gw1 127.0.0.1:${g1} check backup
`;
        const file = path.join(this.cluster.dir, 'haproxy.cfg');
        fs.writeFileSync(file, cfg);
        const check = await run(HAPROXY, ['-c', '-f', file]);
        if (check.code !== 0) throw new Error(`haproxy -c refused ${file}: ${check.out}`);
        const log = fs.createWriteStream(path.join(this.cluster.dir, 'haproxy.log'));
        const child = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
        kids.add(child);
        child.stdout.pipe(log);
        child.stderr.pipe(log);
        this.haproxy = child;
        this.haproxyExited = new Promise((r) => child.on('exit', () => (kids.delete(child), r())));
        await this.serversUp();
    }

    // haproxy's view of its servers: { 'gw_a/gw1': 'UP', 'gw_a/gw2': 'DOWN', ... }
    async lbServers() {
        const csv = await (await fetch(`http://127.0.0.1:${this.lbStats}/stats;csv`)).text();
        const lines = csv.split('\n').filter((l) => l && !l.startsWith('#'));
        const col = csv.slice(2, csv.indexOf('\n')).split(',').indexOf('status');
        const out = {};
        for (const l of lines) {
            const f = l.split(',');
            if (f[1] !== 'FRONTEND' && f[1] !== 'BACKEND' && f[0].startsWith('gw_')) out[`${f[0]}/${f[1]}`] = f[col];
        }
        return out;
    }

    // waits until haproxy has the named servers UP (default: every server of
    // both sites); after gateways start, a backup can pass its checks before
    // the primary does, and a page reconnecting then lands on the backup
    async serversUp(timeout = 10000, names = ['gw_a/gw1', 'gw_a/gw2', 'gw_b/gw1', 'gw_b/gw2']) {
        await waitFor(
            async () => {
                const s = await this.lbServers();
                return names.every((n) => s[n] === 'UP');
            },
            { timeout, what: `haproxy: ${names.join(', ')} UP` },
        );
    }

    url(site) {
        return `http://127.0.0.1:${site === 'B' ? this.lbB : this.lbA}/`;
    }

    // ------------------------------------------------ browser

    async page(site, { viewport = { width: 1100, height: 760 }, context } = {}) {
        const ctx = context || (await this.browser.newContext({ viewport }));
        const page = await ctx.newPage();
        page.on('pageerror', (e) => console.error(`[page ${site}] ${e.message}`));
        await page.goto(this.url(site));
        return page;
    }

    async shot(page, name) {
        await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
    }

    // ------------------------------------------------ redis views

    // Gateway ids holding sessions of `user` (parley:{u:NAME}:sessions).
    async gatewaysOf(user) {
        const members = await this.cluster.redis('SMEMBERS', `parley:{u:${user}}:sessions`);
        return members.map((m) => m.slice(0, m.lastIndexOf('#'))).sort();
    }
}

function run(cmd, args) {
    return new Promise((resolve) => {
        const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        c.stdout.on('data', (d) => (out += d));
        c.stderr.on('data', (d) => (out += d));
        c.on('exit', (code) => resolve({ code, out }));
        c.on('error', (e) => resolve({ code: -1, out: e.message }));
    });
}
